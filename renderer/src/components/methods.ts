// Names and order of the training methods as the UI shows them.
import type { TrainMethod } from '../../../electron/api/contract.js';

/** The resource table's rows, cheapest in memory last is not guaranteed: this is the reading order. */
export const TABLE_METHODS: readonly TrainMethod[] = ['full', 'lora', 'qlora', 'prompt', 'prefix'];

export const METHOD_LABELS: Record<TrainMethod, string> = {
  full: 'Full fine-tuning',
  lora: 'LoRA',
  qlora: 'QLoRA',
  prompt: 'Prompt tuning',
  prefix: 'Prefix tuning',
};

/** What the method saves: the whole model, or an adapter beside it. */
export function savedThing(method: TrainMethod): string {
  return method === 'full' ? 'the whole model' : 'an adapter';
}

/**
 * The byte count the memory bars are drawn against: the largest estimate,
 * so rows compare with each other. The available memory is only a marker
 * on that scale, so a tiny model's bars are not slivers next to a large RAM;
 * when an estimate exceeds it, the marker falls inside the bars.
 */
export function barScale(totals: readonly number[], available: number): number {
  const largest = Math.max(0, ...totals);
  return largest > 0 ? largest : Math.max(1, available);
}
