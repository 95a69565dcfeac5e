// The training loop. Hugging Face semantics: an optimizer step covers
// gradAccum micro-batches, and its loss is the mean over every counted label
// token of all of them, so each micro-batch's gradient is scaled by
// 1 / (label tokens of the whole step) — counted before any micro-batch runs,
// which makes "2 micro-batches of 1" equal "1 batch of 2".
import type { NativeEngine } from '../engine/native.js';
import { evaluateExamples } from '../inference/eval.js';
import { chunkIntoMicroBatches, countBatchTokens, epochOrder, makeBatch } from './batches.js';
import type { Example } from './data.js';
import type { EvalMetrics, StepMetrics } from './metrics.js';
import { learningRate, type SchedulerKind } from './schedule.js';

export interface TrainerOptions {
  optimizer: 'adamw' | 'sgd';
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** global gradient-norm clipping; 0 disables */
  clip: number;
  scheduler: SchedulerKind;
  warmupSteps: number;
  /** total optimizer steps; null = derive from epochs */
  maxSteps: number | null;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  /** seeds the per-epoch shuffle */
  seed: number;
  /** evaluate every N optimizer steps (0 = only at the end, when there is eval data) */
  evalEvery: number;
  /** save a checkpoint every N optimizer steps (0 = never) */
  saveEvery: number;
}

export interface TrainerHooks {
  onStep?(row: StepMetrics, totalSteps: number): void;
  onEval?(row: EvalMetrics): void;
  saveCheckpoint?(step: number): Promise<void>;
}

export interface TrainSummary {
  steps: number;
  finalLoss: number | null;
  finalEvalLoss: number | null;
  elapsedSeconds: number;
}

/** Optimizer steps in one epoch: micro-batches grouped by gradAccum, the last group may be short. */
export function stepsPerEpoch(examples: number, batchSize: number, gradAccum: number): number {
  return Math.ceil(Math.ceil(examples / batchSize) / gradAccum);
}

export function totalSteps(examples: number, options: Pick<TrainerOptions, 'maxSteps' | 'epochs' | 'batchSize' | 'gradAccum'>): number {
  if (options.maxSteps !== null) return options.maxSteps;
  return options.epochs * stepsPerEpoch(examples, options.batchSize, options.gradAccum);
}

/** The micro-batches of each optimizer step, epoch after epoch (reshuffled every epoch). */
export function* optimizerStepGroups(examples: readonly Example[], batchSize: number, gradAccum: number, seed: number): Generator<Example[][]> {
  for (let epoch = 0; ; epoch++) {
    const micro = chunkIntoMicroBatches(examples, epochOrder(examples.length, seed, epoch), batchSize);
    for (let i = 0; i < micro.length; i += gradAccum) yield micro.slice(i, i + gradAccum);
  }
}

export async function train(
  engine: NativeEngine,
  trainSet: readonly Example[],
  evalSet: readonly Example[],
  options: TrainerOptions,
  hooks: TrainerHooks = {},
): Promise<TrainSummary> {
  if (trainSet.length === 0) throw new Error('no training examples');
  const total = totalSteps(trainSet.length, options);
  const schedule = { kind: options.scheduler, baseLr: options.lr, warmupSteps: options.warmupSteps, totalSteps: total };
  const started = performance.now();
  let finalLoss: number | null = null;
  let finalEvalLoss: number | null = null;
  let lastEvalStep = -1;

  const runEval = async (step: number): Promise<void> => {
    const r = await evaluateExamples(engine, evalSet, options.batchSize);
    finalEvalLoss = r.loss;
    lastEvalStep = step;
    hooks.onEval?.({ step, eval_loss: r.loss });
  };

  const groups = optimizerStepGroups(trainSet, options.batchSize, options.gradAccum, options.seed);
  for (let step = 1; step <= total; step++) {
    const stepStart = performance.now();
    const group = groups.next();
    if (group.done) throw new Error('internal: the step generator ended');
    const batches = group.value.map((rows) => makeBatch(rows));
    const stepTokens = batches.reduce((n, b) => n + countBatchTokens(b), 0);
    if (stepTokens === 0) throw new Error(`optimizer step ${step} has no label tokens (every label is -100)`);
    let lossSum = 0;
    for (const batch of batches) {
      const r = await engine.forwardBackward(batch, 1 / stepTokens);
      lossSum += r.lossSum;
    }
    const lr = learningRate(schedule, step - 1);
    const { gradNorm } = await engine.optimizerStep({
      kind: options.optimizer,
      lr,
      beta1: options.beta1,
      beta2: options.beta2,
      eps: options.eps,
      weightDecay: options.weightDecay,
      maxGradNorm: options.clip,
    });
    const now = performance.now();
    const stepSeconds = (now - stepStart) / 1000;
    finalLoss = lossSum / stepTokens;
    hooks.onStep?.(
      {
        step,
        loss: finalLoss,
        lr,
        grad_norm: gradNorm,
        tokens: stepTokens,
        tokens_per_s: stepSeconds > 0 ? stepTokens / stepSeconds : 0,
        elapsed_s: (now - started) / 1000,
      },
      total,
    );
    if (evalSet.length > 0 && options.evalEvery > 0 && step % options.evalEvery === 0) await runEval(step);
    if (options.saveEvery > 0 && step % options.saveEvery === 0 && hooks.saveCheckpoint) await hooks.saveCheckpoint(step);
  }
  // A final score on the held-out data, unless the last step was just scored.
  if (evalSet.length > 0 && lastEvalStep !== total) await runEval(total);
  return { steps: total, finalLoss, finalEvalLoss, elapsedSeconds: (performance.now() - started) / 1000 };
}
