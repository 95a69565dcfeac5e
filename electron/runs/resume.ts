// Putting an engine back into the state of a checkpoint: the trained tensors,
// the optimizer's moments and step count, the dropout counter; and the
// trainer's position (data order, eval history) to continue the loop from.
// With the same thread count the continued run is bit-identical to one that
// never stopped.
import { join } from 'node:path';
import type { NativeEngine } from '../engine/native.js';
import { readPeftAdapter } from '../adapters/peft.js';
import { readPromptAdapter } from '../adapters/prompt-adapter.js';
import { describeLayout, PREFIX_TENSOR, PROMPT_TENSOR, type AdapterLayout } from '../adapters/layout.js';
import { PREFIX_ENCODER_FILE, restorePrefixEncoderFile } from './prefix-encoder-file.js';
import { expectedTensors, type ModelFolder } from '../models/folder.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import type { TrainConfig } from '../training/config.js';
import type { TrainerPosition } from '../training/trainer.js';
import { OPTIMIZER_FILE, type TrainerState } from './checkpoint-format.js';
import { readOptimizerFile } from './optimizer-file.js';
import { countOf } from '../text/plural.js';

/** The checkpoint must belong to this run as it is configured now; returns warnings that do not stop it. */
export function checkStateFitsRun(state: TrainerState, config: TrainConfig, totals: { totalSteps: number; trainExamples: number; evalExamples: number }): string[] {
  const where = `checkpoint step-${state.step}`;
  if (state.method !== config.method) throw new Error(`${where} was trained with --method ${state.method}, the run is configured for ${config.method}`);
  if (state.data.train_examples !== totals.trainExamples || state.data.eval_examples !== totals.evalExamples) {
    throw new Error(`${where} was trained on ${countOf(state.data.train_examples, 'training example')} and ${countOf(state.data.eval_examples, 'eval example')}; the data now gives ${totals.trainExamples} and ${totals.evalExamples}. Restore the run's data file, or start a new run.`);
  }
  if (state.total_steps !== totals.totalSteps) throw new Error(`${where} belongs to a run of ${state.total_steps} steps; this one has ${totals.totalSteps}`);
  const warnings: string[] = [];
  if (state.threads !== config.threads) {
    warnings.push(`the run trained with ${countOf(state.threads, 'thread')} and continues with ${config.threads}: results stay bit-exact only with the same --threads`);
  }
  if (state.scheduler.base_lr !== config.lr) warnings.push(`the learning rate changes from ${state.scheduler.base_lr} to ${config.lr} from step ${state.step + 1} on`);
  return warnings;
}

/**
 * Loads a checkpoint's tensors, optimizer state and dropout counter into an
 * engine set up for the run's method. Prompt tuning and plain prefix tuning
 * restore from the adapter's F32 table (it is the trained tensor itself);
 * prefix tuning with projection from prefix_encoder.safetensors.
 */
export async function restoreEngine(engine: NativeEngine, folder: ModelFolder, layout: AdapterLayout | null, dir: string, state: TrainerState): Promise<void> {
  if (layout?.kind === 'lora') {
    const lora = layout.lora;
    const adapter = await readPeftAdapter(dir, folder.spec);
    const same = adapter.lora.rank === lora.rank && adapter.lora.targets.join() === lora.targets.join() && JSON.stringify(adapter.lora.layers) === JSON.stringify(lora.layers) &&
      (adapter.lora.dora === true) === (lora.dora === true);
    if (!same) throw new Error(`${dir}: the checkpoint's adapter (${describeLayout({ kind: 'lora', lora: adapter.lora })}) does not match the run's LoRA settings (${describeLayout(layout)})`);
    for (const t of adapter.tensors) engine.setTensor(t.name, t.data);
  } else if (layout) {
    const adapter = await readPromptAdapter(dir, folder.spec);
    const stored: AdapterLayout = adapter.kind === 'prompt' ? { kind: 'prompt', prompt: adapter.prompt } : { kind: 'prefix', prefix: adapter.prefix };
    const nvt = (l: AdapterLayout) => (l.kind === 'prompt' ? l.prompt.numVirtualTokens : l.kind === 'prefix' ? l.prefix.numVirtualTokens : 0);
    const projection = (l: AdapterLayout) => l.kind === 'prefix' && l.prefix.projection;
    if (stored.kind !== layout.kind || nvt(stored) !== nvt(layout) || projection(stored) !== projection(layout)) {
      throw new Error(`${dir}: the checkpoint's adapter (${describeLayout(stored)}) does not match the run's settings (${describeLayout(layout)})`);
    }
    if (layout.kind === 'prompt') engine.setTensor(PROMPT_TENSOR, adapter.table);
    else if (!layout.prefix.projection) engine.setTensor(PREFIX_TENSOR, adapter.table);
    else await restorePrefixEncoderFile(join(dir, PREFIX_ENCODER_FILE), engine);
  } else {
    const header = await readSafetensorsHeader(join(dir, 'model.safetensors'));
    for (const { name, shape } of expectedTensors(folder.spec)) {
      const elements = shape.reduce((a, d) => a * d, 1);
      engine.setTensor(name, (await readTensorAsFloat32(header, name, elements)).data);
    }
  }
  engine.setOptimizerState(await readOptimizerFile(join(dir, OPTIMIZER_FILE), engine));
  engine.setDropoutCounter(state.rng.dropout_counter);
}

export function positionFromState(state: TrainerState): TrainerPosition {
  return {
    step: state.step,
    epoch: state.data.epoch,
    stepInEpoch: state.data.step_in_epoch,
    elapsedSeconds: state.elapsed_s,
    lastEvalStep: state.eval.last_eval_step,
    finalLoss: state.final_loss,
    finalEvalLoss: state.eval.final_eval_loss,
    bestEvalLoss: state.eval.best_eval_loss,
    // a checkpoint of an older version: the best loss is known, its step and the patience count are not
    bestEvalStep: state.eval.best_eval_step ?? -1,
    evalsWithoutImprovement: state.eval.evals_without_improvement ?? 0,
  };
}
