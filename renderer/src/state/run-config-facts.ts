// A run's configuration as label / value lines for the Runs page: the
// settings people compare between runs, not every field of run.json. The
// wording of each setting is one function, so the compare table
// (run-compare-facts.ts) says a setting as the run's own facts do.
import type { TrainConfig } from '../../../electron/api/contract.js';
import { METHOD_LABELS } from '../components/methods.js';
import { countOf } from '../format.js';
import { percentWords } from '../../../electron/training/warmup.js';

export interface Fact {
  label: string;
  value: string;
}

/** "200 steps", or "3 epochs" for a run without a step count */
export function lengthWords(c: TrainConfig): string {
  return c.steps === null ? countOf(c.epochs, 'epoch') : countOf(c.steps, 'step');
}

export function batchWords(c: TrainConfig): string {
  return c.gradAccum === 1 ? String(c.batchSize) : `${c.batchSize} × ${c.gradAccum} accumulated micro-batches (effective ${c.batchSize * c.gradAccum})`;
}

/**
 * "cosine, 10 warmup steps"; warmup given as a fraction of the run (train
 * --warmup-ratio): "cosine, warmup 3% of the run (12 steps)", the fraction
 * as the user said it and the steps run.json records it came to
 */
export function schedulerWords(c: TrainConfig): string {
  // absent from the run.json of a version before the fraction: steps
  const ratio = c.warmupRatio ?? null;
  if (ratio === null) return `${c.scheduler}, ${countOf(c.warmupSteps, 'warmup step')}`;
  return `${c.scheduler}, warmup ${percentWords(ratio)} of the run (${countOf(c.warmupSteps, 'step')})`;
}

export function optimizerWords(c: TrainConfig): string {
  return `${c.optimizer}, weight decay ${c.weightDecay}, clip ${c.clip === 0 ? 'off' : c.clip}`;
}

/** Where and when the run evaluates; null: it does not. */
export function evaluationWords(c: TrainConfig): string | null {
  const when = c.evalEvery === 0 ? 'at the end' : `every ${countOf(c.evalEvery, 'step')}`;
  // evalData is absent from the run.json of an older version: no evaluation file
  if (c.evalData) return `on the file ${c.evalData}, ${when}`;
  if (c.evalSplit > 0) return `${Math.round(c.evalSplit * 1000) / 10}% held out, ${when}`;
  return null;
}

/** dora is absent from the run.json of a version before DoRA: plain LoRA */
export function isDora(c: TrainConfig): boolean {
  return c.lora?.dora === true;
}

/** NEFTune's alpha; absent from the run.json of a version before NEFTune: 0, no noise */
export function neftuneAlpha(c: TrainConfig): number {
  return c.neftuneAlpha ?? 0;
}

/** "alpha 5, while training"; "off" for a run without noise */
export function neftuneWords(c: TrainConfig): string {
  const alpha = neftuneAlpha(c);
  return alpha > 0 ? `alpha ${alpha}, while training` : 'off';
}

export function runConfigFacts(c: TrainConfig): Fact[] {
  const facts: Fact[] = [
    { label: 'Model', value: c.model },
    { label: 'Data', value: c.data },
    { label: 'Method', value: METHOD_LABELS[c.method] },
    { label: 'Learning rate', value: String(c.lr) },
    { label: 'Length', value: lengthWords(c) },
    { label: 'Batch', value: batchWords(c) },
    { label: 'Sequence length', value: String(c.seqLen) },
    { label: 'Scheduler', value: schedulerWords(c) },
    { label: 'Optimizer', value: optimizerWords(c) },
    { label: 'Seed', value: String(c.seed) },
  ];
  if (c.lora) {
    facts.push({
      label: 'LoRA',
      value: `${isDora(c) ? 'DoRA (weight-decomposed), ' : ''}rank ${c.lora.rank}, alpha ${c.lora.alpha}${c.lora.rslora ? ' (rsLoRA)' : ''}, dropout ${c.lora.dropout}, on ${c.lora.targets.join(', ')}`,
    });
  }
  if (c.prompt) facts.push({ label: 'Prompt tuning', value: `${c.prompt.numVirtualTokens} virtual tokens, init ${c.prompt.init}` });
  if (c.prefix) facts.push({ label: 'Prefix tuning', value: `${c.prefix.numVirtualTokens} virtual tokens${c.prefix.projection ? ', with projection' : ''}` });
  // said only when on: most runs train without it
  if (neftuneAlpha(c) > 0) facts.push({ label: 'NEFTune noise', value: neftuneWords(c) });
  const evaluation = evaluationWords(c);
  if (evaluation !== null) facts.push({ label: 'Evaluation', value: evaluation });
  return facts;
}
