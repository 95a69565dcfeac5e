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
import { judgeEvaluation, shouldStopEarly, type EarlyStopEnd, type EarlyStopOptions } from './early-stop.js';
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
  /** early stopping (early-stop.ts); absent: train to the end */
  earlyStop?: EarlyStopOptions;
  /** prompt tuning's soft prompt length (its last token predicts each row's first label: countBatchTokens); 0 otherwise */
  virtualTokens?: number;
}

/**
 * Where a run stands between two optimizer steps: everything the loop itself
 * carries from one step to the next. A checkpoint stores it, and a resumed
 * run starts the loop from it.
 */
export interface TrainerPosition {
  /** optimizer steps taken */
  step: number;
  /** epoch of the next step's data (0-based) and that step's index within the epoch */
  epoch: number;
  stepInEpoch: number;
  /** training seconds so far (all sessions of the run) */
  elapsedSeconds: number;
  /** step of the last evaluation, -1 = none */
  lastEvalStep: number;
  finalLoss: number | null;
  finalEvalLoss: number | null;
  bestEvalLoss: number | null;
  /** step of the best (lowest) eval loss, -1 = none or not known (a checkpoint of an older version) */
  bestEvalStep: number;
  /** evaluations in a row that did not improve on the best by more than the early-stop delta */
  evalsWithoutImprovement: number;
}

export const START_POSITION: TrainerPosition = {
  step: 0,
  epoch: 0,
  stepInEpoch: 0,
  elapsedSeconds: 0,
  lastEvalStep: -1,
  finalLoss: null,
  finalEvalLoss: null,
  bestEvalLoss: null,
  bestEvalStep: -1,
  evalsWithoutImprovement: 0,
};

export interface TrainerHooks {
  onStep?(row: StepMetrics, totalSteps: number): void;
  onEval?(row: EvalMetrics): void;
  /** Awaited after an evaluation that is a new best (strictly lower than every earlier one): keep-best writes the adapter here. */
  onNewBest?(position: TrainerPosition): Promise<void>;
  saveCheckpoint?(position: TrainerPosition): Promise<void>;
  /** Awaited before every optimizer step (pause waits here); false stops the loop before `nextStep`. */
  beforeStep?(nextStep: number): Promise<boolean>;
}

export interface TrainSummary {
  steps: number;
  finalLoss: number | null;
  finalEvalLoss: number | null;
  elapsedSeconds: number;
  /** true when beforeStep stopped the loop early */
  stopped: boolean;
  /** set when early stopping ended the run (it ends as finished, not stopped) */
  earlyStop: EarlyStopEnd | null;
  /** where the loop ended (a cancelled run checkpoints this) */
  position: TrainerPosition;
}

/** A loss or gradient norm that is NaN or infinite: the weights must not take this step. */
export class NonFiniteError extends Error {
  constructor(readonly step: number, readonly quantity: 'loss' | 'gradient norm', readonly value: number) {
    super(`step ${step}: the ${quantity} is ${value} (training diverged)`);
    this.name = 'NonFiniteError';
  }
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

/** The epoch and the index within it of optimizer step `stepsTaken + 1`'s data. */
export function dataPosition(stepsTaken: number, examples: number, batchSize: number, gradAccum: number): { epoch: number; stepInEpoch: number } {
  const perEpoch = stepsPerEpoch(examples, batchSize, gradAccum);
  return { epoch: Math.floor(stepsTaken / perEpoch), stepInEpoch: stepsTaken % perEpoch };
}

export async function train(
  engine: NativeEngine,
  trainSet: readonly Example[],
  evalSet: readonly Example[],
  options: TrainerOptions,
  hooks: TrainerHooks = {},
  from: TrainerPosition = START_POSITION,
): Promise<TrainSummary> {
  if (trainSet.length === 0) throw new Error('no training examples');
  const total = totalSteps(trainSet.length, options);
  if (from.step > total) throw new Error(`cannot continue from step ${from.step}: the run has ${total} steps`);
  const schedule = { kind: options.scheduler, baseLr: options.lr, warmupSteps: options.warmupSteps, totalSteps: total };
  // Time spent in earlier sessions of a resumed run counts too; time spent
  // paused (waiting in beforeStep) does not: it is not training.
  let started = performance.now() - from.elapsedSeconds * 1000;
  const pos: TrainerPosition = { ...from };
  const elapsed = () => (performance.now() - started) / 1000;
  const at = (step: number): TrainerPosition => ({
    ...pos,
    step,
    ...dataPosition(step, trainSet.length, options.batchSize, options.gradAccum),
    elapsedSeconds: elapsed(),
  });

  const runEval = async (step: number): Promise<void> => {
    const r = await evaluateExamples(engine, evalSet, options.batchSize);
    pos.finalEvalLoss = r.loss;
    pos.lastEvalStep = step;
    const judged = judgeEvaluation(pos, r.loss, step, options.earlyStop?.delta ?? 0);
    Object.assign(pos, judged.position);
    hooks.onEval?.({ step, eval_loss: r.loss });
    if (judged.newBest && hooks.onNewBest) await hooks.onNewBest(at(step));
  };

  // The data order is a function of the seed and the epoch alone, so a
  // resumed run replays the plan and skips the groups already trained on.
  const groups = optimizerStepGroups(trainSet, options.batchSize, options.gradAccum, options.seed);
  for (let k = 0; k < from.step; k++) groups.next();
  let stopped = false;
  let earlyStop: EarlyStopEnd | null = null;
  // the last step ends the run anyway: an early stop is one before it
  const stopsEarly = (step: number): EarlyStopEnd | null =>
    options.earlyStop && step < total && pos.lastEvalStep === step && shouldStopEarly(pos, options.earlyStop)
      ? { step, evaluations: pos.evalsWithoutImprovement, bestEvalStep: pos.bestEvalStep, bestEvalLoss: pos.bestEvalLoss! }
      : null;
  // a checkpoint of the very step that stopped the run (a crash before the final save): it stays stopped
  if (from.step > 0) earlyStop = stopsEarly(from.step);
  for (let step = from.step + 1; step <= total && earlyStop === null; step++) {
    if (hooks.beforeStep) {
      const waitStart = performance.now();
      const go = await hooks.beforeStep(step);
      started += performance.now() - waitStart;
      if (!go) {
        stopped = true;
        break;
      }
    }
    const stepStart = performance.now();
    const group = groups.next();
    if (group.done) throw new Error('internal: the step generator ended');
    const batches = group.value.map((rows) => makeBatch(rows));
    const stepTokens = batches.reduce((n, b) => n + countBatchTokens(b, options.virtualTokens ?? 0), 0);
    // the data's tokens the model reads this step (prompts included; padding and virtual tokens not): the speed of the whole pass
    const inputTokens = group.value.reduce((n, rows) => n + rows.reduce((m, r) => m + r.inputIds.length, 0), 0);
    if (stepTokens === 0) throw new Error(`optimizer step ${step} has no label tokens (every label is -100)`);
    let lossSum = 0;
    for (const batch of batches) {
      const r = await engine.forwardBackward(batch, 1 / stepTokens);
      lossSum += r.lossSum;
    }
    // Checked before the optimizer runs: the weights keep their last good values.
    if (!Number.isFinite(lossSum)) throw new NonFiniteError(step, 'loss', lossSum / stepTokens);
    const lr = learningRate(schedule, step - 1);
    let gradNorm: number;
    try {
      ({ gradNorm } = await engine.optimizerStep({
        kind: options.optimizer,
        lr,
        beta1: options.beta1,
        beta2: options.beta2,
        eps: options.eps,
        weightDecay: options.weightDecay,
        maxGradNorm: options.clip,
      }));
    } catch (e) {
      // The engine refuses a non-finite gradient norm before touching any weight.
      const m = /gradient norm is (-?nan|-?inf\w*)/i.exec((e as Error).message);
      if (m) throw new NonFiniteError(step, 'gradient norm', m[1].toLowerCase().startsWith('-inf') ? -Infinity : m[1].toLowerCase().includes('inf') ? Infinity : NaN);
      throw e;
    }
    const now = performance.now();
    const stepSeconds = (now - stepStart) / 1000;
    pos.finalLoss = lossSum / stepTokens;
    hooks.onStep?.(
      {
        step,
        loss: pos.finalLoss,
        lr,
        grad_norm: gradNorm,
        tokens: stepTokens,
        tokens_per_s: stepSeconds > 0 ? stepTokens / stepSeconds : 0,
        input_tokens: inputTokens,
        input_tokens_per_s: stepSeconds > 0 ? inputTokens / stepSeconds : 0,
        elapsed_s: (now - started) / 1000,
      },
      total,
    );
    pos.step = step;
    if (evalSet.length > 0 && options.evalEvery > 0 && step % options.evalEvery === 0) await runEval(step);
    if (options.saveEvery > 0 && step % options.saveEvery === 0 && hooks.saveCheckpoint) await hooks.saveCheckpoint(at(step));
    earlyStop = stopsEarly(step);
  }
  // A final score on the held-out data, unless the last step was just scored.
  // (an early stop has just scored its last step)
  if (!stopped && evalSet.length > 0 && pos.lastEvalStep !== pos.step) await runEval(pos.step);
  const position = at(pos.step);
  return { steps: pos.step, finalLoss: pos.finalLoss, finalEvalLoss: pos.finalEvalLoss, elapsedSeconds: position.elapsedSeconds, stopped, earlyStop, position };
}
