// Which training method to recommend, from what each would cost (the memory
// rows of `inspect`) and what the machine has free. A pure function, so the
// rule is testable on any numbers:
//   LoRA when it fits comfortably (under COMFORT of the available memory),
//   else QLoRA when it fits, else prompt tuning (the smallest footprint).
// Full fine-tuning is offered as a baseline, never recommended.
import type { InspectReport, MemoryRow } from '../cli/commands/inspect.js';
import type { MethodAdvice, TrainMethod } from '../api/contract.js';

/** LoRA is "comfortable" below this share of the available memory (the estimate leaves out the OS and the app). */
export const COMFORT = 0.7;

import { bytesInWords } from '../text/bytes.js';

export { bytesInWords };

const TEXT: Record<TrainMethod, { summary: string; whenToPick: string }> = {
  lora: {
    summary: 'Trains small low-rank matrices beside the attention and MLP weights; the base stays frozen and the adapter is a few MiB.',
    whenToPick: 'The default choice: near full fine-tuning quality when the base model fits in memory at its stored precision.',
  },
  qlora: {
    summary: 'LoRA on a base held in 4-bit NF4: the frozen weights take about a quarter of the memory, at some speed cost.',
    whenToPick: 'When LoRA does not fit (or barely fits) in memory; quality stays close to LoRA.',
  },
  full: {
    summary: 'Updates every weight: weights, gradients and two optimizer moments for each parameter, and the result is a whole model.',
    whenToPick: 'As a baseline on small models with plenty of memory, or when the task needs changes LoRA cannot reach.',
  },
  prompt: {
    summary: 'Learns a few virtual token embeddings put before every input; the smallest adapter and optimizer state of all.',
    whenToPick: 'When memory is tightest, or for steering a capable model towards a format or task with little data.',
  },
  prefix: {
    summary: 'Learns keys and values that every layer\'s attention sees before the input: more capacity than prompt tuning, still tiny.',
    whenToPick: 'When prompt tuning is too weak but LoRA is too large, or to keep the base weights entirely untouched.',
  },
};

export const METHOD_ORDER: readonly TrainMethod[] = ['lora', 'qlora', 'prompt', 'prefix', 'full'];

/** Why a method cannot train this model (null: it can). */
export function unavailableReason(method: TrainMethod, report: Pick<InspectReport, 'quantization'>): string | null {
  if (!report.quantization) return null;
  if (method === 'full') return 'this folder holds 4-bit weights (bitsandbytes NF4), which cannot be trained directly; choose QLoRA, prompt tuning or prefix tuning';
  if (method === 'lora') return 'this folder holds 4-bit weights (bitsandbytes NF4): LoRA on it is QLoRA; choose QLoRA';
  return null;
}

export interface Recommendation {
  methods: MethodAdvice[];
  recommended: TrainMethod;
  recommendation: string;
}

export function recommendMethod(report: Pick<InspectReport, 'memory' | 'quantization'> & Partial<Pick<InspectReport, 'time'>>, availableBytes: number): Recommendation {
  const row = (m: TrainMethod): MemoryRow => report.memory[m];
  const fits = (m: TrainMethod) => row(m).total_bytes <= availableBytes;
  const methods: MethodAdvice[] = METHOD_ORDER.map((method) => ({
    method,
    memory: row(method),
    fits: fits(method),
    ...TEXT[method],
    unavailable: unavailableReason(method, report),
    // the time beside the memory: inspect's estimate at the same batch and length (null on a GPU)
    tokensPerSecond: report.time?.tokens_per_second[method] ?? null,
  }));
  const usable = (m: TrainMethod) => unavailableReason(m, report) === null;
  const need = (m: TrainMethod) => `${m === 'qlora' ? 'QLoRA' : m === 'lora' ? 'LoRA' : m} needs about ${bytesInWords(row(m).total_bytes)} of the ${bytesInWords(availableBytes)} available`;
  if (usable('lora') && row('lora').total_bytes < COMFORT * availableBytes) {
    return { methods, recommended: 'lora', recommendation: `LoRA fits comfortably: it ${need('lora').replace(/^LoRA /, '')}.` };
  }
  if (fits('qlora')) {
    const why = usable('lora') ? `LoRA would take ${bytesInWords(row('lora').total_bytes)}, too close to or over the ${bytesInWords(availableBytes)} available` : 'the model is stored in 4 bits, so LoRA on it is QLoRA';
    return { methods, recommended: 'qlora', recommendation: `QLoRA: ${why}; holding the base in 4-bit NF4 brings it to ${bytesInWords(row('qlora').total_bytes)}.` };
  }
  const prompt = fits('prompt')
    ? `Prompt tuning: even QLoRA needs ${bytesInWords(row('qlora').total_bytes)} and only ${bytesInWords(availableBytes)} is available; prompt tuning needs ${bytesInWords(row('prompt').total_bytes)}.`
    : `Prompt tuning has the smallest footprint (${bytesInWords(row('prompt').total_bytes)}), but nothing fits in the ${bytesInWords(availableBytes)} available: lower the batch size or the sequence length, or free memory.`;
  return { methods, recommended: 'prompt', recommendation: prompt };
}
