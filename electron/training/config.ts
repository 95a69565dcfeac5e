// The resolved configuration of a training run: every setting with its
// default filled in. It is written to run.json, so a run folder always says
// exactly how it was made.
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { LORA_TARGETS, type AdapterLora } from '../adapters/peft-config.js';
import type { SchedulerKind } from './schedule.js';

/** rank, alpha, dropout, targets, rslora, init ("default" | "gaussian"), layers (null = all) */
export type LoraSettings = AdapterLora;

export interface TrainConfig {
  model: string;
  data: string;
  out: string;
  method: 'lora' | 'full';
  /** null for full fine-tuning */
  lora: LoraSettings | null;
  /** adapter folder whose tensors (and LoRA settings) the run starts from */
  initAdapter: string | null;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  weightDecay: number;
  scheduler: SchedulerKind;
  warmupSteps: number;
  /** optimizer steps; null = run `epochs` epochs */
  steps: number | null;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  /** max global gradient norm; 0 = no clipping */
  clip: number;
  seed: number;
  threads: number;
  evalSplit: number;
  evalEvery: number;
  saveEvery: number;
  gradientCheckpointing: boolean;
  /** start even when the estimate exceeds the machine's available memory */
  ignoreMemoryCheck: boolean;
}

export const TRAIN_DEFAULTS = {
  rank: 8,
  alpha: 16,
  dropout: 0,
  loraLr: 2e-4,
  fullLr: 1e-5,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  weightDecay: 0,
  scheduler: 'linear' as SchedulerKind,
  warmupSteps: 0,
  epochs: 1,
  batchSize: 1,
  gradAccum: 1,
  seqLen: 512,
  clip: 1.0,
  seed: 42,
  evalSplit: 0,
  evalEvery: 0,
  saveEvery: 0,
} as const;

/** --seq-len must fit the model's positions (train and eval share the check). */
export function checkSeqLenFits(seqLen: number, spec: ModelSpec): void {
  const max = spec.maxPositionEmbeddings;
  if (seqLen > max) {
    throw new Error(`--seq-len ${seqLen} exceeds the model's max_position_embeddings (${max}); use --seq-len ${max} or less`);
  }
}

/** Expands a --targets list: "all-linear" means every linear layer of the blocks (PEFT excludes lm_head). */
export function resolveTargets(list: readonly string[]): LoraTarget[] {
  if (list.includes('all-linear')) {
    if (list.length > 1) throw new Error('--targets all-linear cannot be combined with other module names');
    return [...LORA_TARGETS];
  }
  const out: LoraTarget[] = [];
  for (const name of list) {
    if (!LORA_TARGETS.includes(name as LoraTarget)) {
      throw new Error(`--targets: unknown module '${name}'; use a comma list of ${LORA_TARGETS.join(', ')} or all-linear`);
    }
    if (!out.includes(name as LoraTarget)) out.push(name as LoraTarget);
  }
  return out;
}

