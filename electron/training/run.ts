// One training run from a resolved configuration to a finished run folder:
//   out/run.json        the settings (and what they resolved to)
//   out/metrics.jsonl   one row per optimizer step, plus eval rows
//   out/checkpoints/step-N/   with --save-every
//   out/<adapter>       LoRA: a PEFT adapter; full: a complete model folder
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NativeEngine } from '../engine/native.js';
import { saveFullModel } from '../export/model-folder.js';
import type { ModelFolder } from '../models/folder.js';
import { attachAdapter, createEngine, openModelWithTokenizer } from '../session.js';
import { loadAddon } from '../engine/load.js';
import { adapterFileBytes, saveAdapterFolder } from './adapter-files.js';
import { checkSeqLenFits, type LoraSettings, type TrainConfig } from './config.js';
import { countTrainedTokens, loadJsonl } from './data.js';
import { MetricsWriter } from './metrics.js';
import { ProgressReporter } from './progress.js';
import { estimateRun, memoryShortfall } from './memory-check.js';
import { availableMemoryBytes } from '../system/machine.js';
import { splitTrainEval } from './split.js';
import { totalSteps, train } from './trainer.js';

/** Where progress and notices go (the CLI passes stderr). */
export interface RunIO {
  stderr(text: string): void;
  /** a terminal: the progress line is rewritten in place */
  stderrIsTTY: boolean;
}

export interface RunSummary {
  out: string;
  method: 'lora' | 'full';
  steps: number;
  train_examples: number;
  eval_examples: number;
  final_loss: number | null;
  final_eval_loss: number | null;
  elapsed_s: number;
}

/** Checks that need the model: sizes that must fit it. */
function checkAgainstModel(config: TrainConfig, folder: ModelFolder, lora: LoraSettings | null): void {
  checkSeqLenFits(config.seqLen, folder.spec);
  const badLayer = lora?.layers?.find((l) => l >= folder.spec.numLayers);
  if (badLayer !== undefined) {
    throw new Error(`--layers: layer ${badLayer} does not exist; the model has layers 0..${folder.spec.numLayers - 1}`);
  }
}

async function setUpMethod(engine: NativeEngine, folder: ModelFolder, config: TrainConfig): Promise<LoraSettings | null> {
  if (config.method === 'full') {
    engine.setupFull();
    return null;
  }
  let lora = config.lora!;
  if (config.initAdapter === null) {
    engine.setupLora({ ...lora, seed: config.seed });
    return lora;
  }
  // The adapter decides its layout; dropout stays a setting of this run.
  const adapter = await attachAdapter(engine, folder, config.initAdapter, config.seed, lora.dropout);
  return { ...adapter.lora, dropout: lora.dropout };
}

export async function runTraining(config: TrainConfig, io: RunIO): Promise<RunSummary> {
  const progress = new ProgressReporter({ write: (text: string) => io.stderr(text), isTTY: io.stderrIsTTY });
  const log = (line: string) => progress.message(line);
  const { folder, tokenizer } = await openModelWithTokenizer(config.model);
  checkAgainstModel(config, folder, config.lora);
  const examples = loadJsonl(config.data, tokenizer, { seqLen: config.seqLen, vocabSize: folder.spec.vocabSize });
  const split = splitTrainEval(examples, config.evalSplit, config.seed);
  // A row with no label token after the shift adds nothing to any gradient.
  const trainSet = split.train.filter((e) => countTrainedTokens(e.labels) > 0);
  if (trainSet.length === 0) throw new Error(`${config.data}: no training example has a token to learn (rows of one token, or every label -100); give rows of two or more tokens with labels other than -100`);
  if (trainSet.length < split.train.length) {
    log(`note: skipping ${split.train.length - trainSet.length} training row(s) with no label token to learn`);
  }
  const steps = totalSteps(trainSet.length, { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum });

  const addon = loadAddon();
  // --init-adapter decides the LoRA layout, so its rank is only known once read;
  // the run's own settings are the estimate before that.
  const shortfall = memoryShortfall(estimateRun(addon, folder.spec, config, config.lora), availableMemoryBytes(), config);
  if (shortfall !== null) {
    if (!config.ignoreMemoryCheck) throw new Error(shortfall);
    log(`warning: ${shortfall}`);
  }
  await mkdir(config.out, { recursive: true });
  const engine = createEngine(addon, folder, { threads: config.threads, gradientCheckpointing: config.gradientCheckpointing, seed: config.seed });
  try {
    const lora = await setUpMethod(engine, folder, config);
    const resolved: TrainConfig = { ...config, lora };
    await writeFile(
      join(config.out, 'run.json'),
      JSON.stringify(
        {
          config: resolved,
          resolved: {
            total_steps: steps,
            train_examples: trainSet.length,
            eval_examples: split.eval.length,
            architecture: folder.spec.architecture,
            parameters: folder.parameterCount,
            trainable_parameters: engine.parameters().filter((p) => p.trainable).reduce((n, p) => n + p.shape.reduce((a, d) => a * d, 1), 0),
            stored_dtype: folder.storedDType,
            adapter_file_bytes: lora ? adapterFileBytes(folder.spec, lora) : null,
            engine: engine.describe(),
            addon_version: addon.version,
          },
        },
        null,
        2,
      ) + '\n',
    );
    log(`training ${config.method} on ${trainSet.length} example(s) for ${steps} step(s); ${engine.describe()}`);

    const metrics = new MetricsWriter(join(config.out, 'metrics.jsonl'));
    const baseModel = folder.dir;
    const summary = await train(
      engine,
      trainSet,
      split.eval,
      {
        optimizer: config.optimizer,
        lr: config.lr,
        beta1: config.adamBeta1,
        beta2: config.adamBeta2,
        eps: config.adamEpsilon,
        weightDecay: config.weightDecay,
        clip: config.clip,
        scheduler: config.scheduler,
        warmupSteps: config.warmupSteps,
        maxSteps: config.steps,
        epochs: config.epochs,
        batchSize: config.batchSize,
        gradAccum: config.gradAccum,
        seed: config.seed,
        evalEvery: config.evalEvery,
        saveEvery: config.saveEvery,
      },
      {
        onStep(row, total) {
          metrics.write(row);
          progress.update({ step: row.step, totalSteps: total, loss: row.loss, lr: row.lr, tokensPerSecond: row.tokens_per_s, elapsedSeconds: row.elapsed_s });
        },
        onEval(row) {
          metrics.write(row);
          log(`eval at step ${row.step}: loss ${row.eval_loss.toFixed(4)}`);
        },
        async saveCheckpoint(step) {
          const dir = join(config.out, 'checkpoints', `step-${step}`);
          if (lora) await saveAdapterFolder(dir, { engine, spec: folder.spec, lora, baseModel });
          else await saveFullModel(engine, folder, dir);
        },
      },
    );
    if (lora) await saveAdapterFolder(config.out, { engine, spec: folder.spec, lora, baseModel, keepOtherFiles: true });
    else await saveFullModel(engine, folder, config.out);
    log(`saved ${lora ? 'adapter' : 'model'} to ${config.out}`);
    return {
      out: config.out,
      method: config.method,
      steps: summary.steps,
      train_examples: trainSet.length,
      eval_examples: split.eval.length,
      final_loss: summary.finalLoss,
      final_eval_loss: summary.finalEvalLoss,
      elapsed_s: summary.elapsedSeconds,
    };
  } finally {
    engine.dispose();
  }
}
