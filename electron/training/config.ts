// The resolved configuration of a training run: every setting with its
// default filled in. It is written to run.json, so a run folder always says
// exactly how it was made.
import type { LoraTarget, ModelSpec, Precision, QuantizationOptions } from '../engine/native.js';
import type { DeviceRequest } from '../engine/device.js';
import { LORA_TARGETS, type AdapterLora } from '../adapters/peft-config.js';
import type { AdapterPrefix, AdapterPrompt } from '../adapters/prompt-config.js';
import type { AdapterLayout } from '../adapters/layout.js';
import type { SchedulerKind } from './schedule.js';
import type { CacheSnapshotIdentity } from '../models/cache-snapshot-identity.js';

/**
 * rank, alpha, dropout, targets, rslora, dora, init ("default" | "gaussian"),
 * layers (null = all). run.json records dora as config.lora.dora; a run.json
 * from before DoRA lacks it, which reads as plain LoRA (absent = false).
 */
export type LoraSettings = AdapterLora;

/**
 * lora: LoRA on the base as stored; qlora: LoRA on the base held in 4-bit NF4;
 * full: every weight; prompt: PEFT prompt tuning (learned virtual token
 * embeddings); prefix: PEFT prefix tuning (learned per-layer keys and values).
 */
export const TRAIN_METHODS = ['lora', 'qlora', 'full', 'prompt', 'prefix'] as const;
export type TrainMethod = (typeof TRAIN_METHODS)[number];

/** Every method but full fine-tuning trains an adapter. */
export function trainsAdapter(method: TrainMethod): boolean {
  return method !== 'full';
}

/** The methods whose adapter is a LoRA. */
export function trainsLora(method: TrainMethod): boolean {
  return method === 'lora' || method === 'qlora';
}

/** The methods that learn virtual tokens (PEFT's prompt learning). */
export function trainsVirtualTokens(method: TrainMethod): method is 'prompt' | 'prefix' {
  return method === 'prompt' || method === 'prefix';
}

/** The adapter a run's settings describe (null: full fine-tuning). */
export function adapterLayoutOf(config: Pick<TrainConfig, 'method' | 'lora' | 'prompt' | 'prefix'>): AdapterLayout | null {
  if (config.method === 'prompt') return { kind: 'prompt', prompt: config.prompt! };
  if (config.method === 'prefix') return { kind: 'prefix', prefix: config.prefix! };
  if (config.method === 'full') return null;
  return { kind: 'lora', lora: config.lora! };
}

export interface TrainConfig {
  model: string;
  data: string;
  /**
   * a separate evaluation file (--eval-data), read as `data` is; null: the
   * eval rows are the --eval-split share of `data` (or none)
   */
  evalData: string | null;
  out: string;
  method: TrainMethod;
  /** LoRA and QLoRA only (null otherwise) */
  lora: LoraSettings | null;
  /** --method prompt only: virtual tokens and their init */
  prompt: AdapterPrompt | null;
  /** --method prefix only: virtual tokens and the optional projection */
  prefix: AdapterPrefix | null;
  /** the 4-bit base of --method qlora, or of prompt / prefix with --quant nf4 (null: the base as stored; a bitsandbytes 4-bit folder is NF4 anyway) */
  quantization: QuantizationOptions | null;
  /** adapter folder whose tensors (and LoRA settings) the run starts from */
  initAdapter: string | null;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  weightDecay: number;
  scheduler: SchedulerKind;
  /**
   * steps of linear warmup; with warmupRatio, the steps that fraction came to
   * over the run's optimizer steps (warmup.ts withRunWarmup: set once the run
   * has counted them, so run.json always holds the count; 0 before)
   */
  warmupSteps: number;
  /**
   * warmup as a fraction of the run's optimizer steps (`--warmup-ratio`,
   * Hugging Face's warmup_ratio): what the user said, kept beside the steps it
   * came to; null: warmupSteps as given
   */
  warmupRatio: number | null;
  /** optimizer steps; null = run `epochs` epochs */
  steps: number | null;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  /** max global gradient norm; 0 = no clipping */
  clip: number;
  /**
   * NEFTune (Jain et al. 2023; Hugging Face TrainingArguments.neftune_noise_alpha):
   * while training, the input embeddings get noise uniform within
   * alpha / sqrt(seq_len * hidden); evaluation and generation add none. 0 = off.
   */
  neftuneAlpha: number;
  seed: number;
  threads: number;
  evalSplit: number;
  evalEvery: number;
  saveEvery: number;
  /** write the adapter (full: the model) of every new best eval loss to DIR/best/ (early-stop.ts, runs/best-adapter.ts) */
  keepBest: boolean;
  /** stop after this many evaluations in a row without improvement; 0 = never stop early */
  earlyStop: number;
  /** an evaluation improves only when lower than the best by more than this */
  earlyStopDelta: number;
  gradientCheckpointing: boolean;
  /**
   * where to train: 'auto' (the first NVIDIA GPU when there is one, else the
   * CPU), 'cpu', 'cuda' or 'cuda:N'. run.json records the device the run
   * actually used ('cpu' or 'cuda:N'), so a resumed run goes back to it.
   */
  device: DeviceRequest;
  /**
   * precision of the dense products: 'auto' (bf16 on an NVIDIA GPU with bf16
   * tensor cores, else fp32), 'fp32' or 'bf16'. run.json records the one the
   * run actually used ('fp32' or 'bf16'), so a resumed run computes the same.
   */
  precision: Precision;
  /** start even when the estimate exceeds the machine's available memory */
  ignoreMemoryCheck: boolean;
  /** start even when what the run writes (checkpoints, the result: runs/disk-need.ts) exceeds its disk's free space */
  ignoreDiskCheck: boolean;
  /** how data rows are read (electron/data's loadDataset decides 'auto') */
  dataFormat: DataFormat;
  /** train on completion tokens only (prompt, system and user tokens masked); false = every token */
  completionOnly: boolean;
  /** pack several rows into one sequence of --seq-len (documents do not attend to each other) */
  pack: boolean;
  /** complete checkpoints kept in checkpoints/ (the newest K; 0 = keep all) */
  keepCheckpoints: number;
  /**
   * the model's fingerprint (model-fingerprint.ts) as run.json recorded it when
   * the run started: a resumed run checks its model against it, so the model
   * may be given at a new path (--model with --resume). Absent: not recorded.
   */
  modelFingerprint?: string;
  /**
   * the model's repo, revision and weight blobs when it came from the Hugging
   * Face cache (models/cache-snapshot-identity.ts): a resume refuses a
   * snapshot whose weights differ. Absent or null: not from the cache.
   */
  modelSnapshot?: CacheSnapshotIdentity | null;
}

export const DATA_FORMATS = ['auto', 'alpaca', 'chat', 'completion', 'text', 'tokenized'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

/**
 * Settings added after run.json files were first written: an older run.json
 * lacks them, and reading it fills these in.
 */
export const LATER_DEFAULTS = {
  /** runs from before --eval-data evaluated on their --eval-split only */
  evalData: null as string | null,
  dataFormat: 'auto' as DataFormat,
  completionOnly: true,
  pack: false,
  keepCheckpoints: 3,
  quantization: null,
  prompt: null,
  prefix: null,
  /** runs from before the device choice all ran on the CPU */
  device: 'cpu' as DeviceRequest,
  /**
   * runs from before the precision choice computed in fp32: on the CPU (all
   * of them: see device) fp32 is the only precision, and 'fp32' (not 'auto')
   * keeps such a run in fp32 when it is resumed with --device cuda too
   */
  precision: 'fp32' as Precision,
  /** runs from before --keep-best and --early-stop trained to the end and kept the last adapter only */
  keepBest: false,
  earlyStop: 0,
  earlyStopDelta: 0,
  /** runs from before NEFTune trained without noise */
  neftuneAlpha: 0,
  /** runs from before --warmup-ratio gave their warmup in steps */
  warmupRatio: null as number | null,
  /** runs from before the disk check started without one */
  ignoreDiskCheck: false,
} as const;

export const TRAIN_DEFAULTS = {
  rank: 8,
  alpha: 16,
  dropout: 0,
  loraLr: 2e-4,
  fullLr: 1e-5,
  /** the rates of PEFT's prompt and prefix tuning examples: a handful of vectors needs large steps */
  promptLr: 3e-2,
  prefixLr: 1e-2,
  virtualTokens: 20,
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
  ...LATER_DEFAULTS,
  /** a new run (unlike an old run.json without the field) */
  device: 'auto' as DeviceRequest,
  precision: 'auto' as Precision,
} as const;

/** Positions a row of text needs at least: one token to see and one to predict. */
export const MIN_TEXT_POSITIONS = 2;

/**
 * --seq-len must fit the model's positions (train and eval share the check).
 * Virtual tokens (prompt and prefix tuning) take the first positions, so the
 * real tokens have that many fewer, and at least MIN_TEXT_POSITIONS must be
 * left (`virtualTokensSource` names where the count came from).
 */
/** Tokens one step may hold, virtual tokens included: the engine's kMaxTokensPerStep (model/batch_inputs.h). */
export const MAX_TOKENS_PER_STEP = 2 ** 24;

/**
 * A batch no step can hold (a batch size of 1e9 typed in a form): refused by
 * name, with the sequence length the run really has (its default is known
 * only once the model is), before the engine would.
 */
export function checkStepTokens(config: Pick<TrainConfig, 'batchSize' | 'seqLen'>, virtualTokens = 0): void {
  const tokens = config.batchSize * (config.seqLen + virtualTokens);
  if (tokens <= MAX_TOKENS_PER_STEP) return;
  throw new Error(`--batch-size ${config.batchSize} x --seq-len ${config.seqLen}${virtualTokens ? ` (+ ${virtualTokens} virtual tokens)` : ''} = ${tokens} tokens per step, ` +
    `more than one step can hold (${MAX_TOKENS_PER_STEP}): lower --batch-size (raise --grad-accum to keep the effective batch) or --seq-len`);
}

export function checkSeqLenFits(seqLen: number, spec: ModelSpec, virtualTokens = 0, virtualTokensSource = '--virtual-tokens'): void {
  // Too many virtual tokens leave no room for any text: say that, rather than
  // advise a --seq-len of zero or less.
  const mostVirtual = spec.maxPositionEmbeddings - MIN_TEXT_POSITIONS;
  if (virtualTokens > mostVirtual) {
    throw new Error(`${virtualTokensSource} must be at most ${Math.max(0, mostVirtual)} for this model (max_position_embeddings ${spec.maxPositionEmbeddings}, ` +
      `and at least ${MIN_TEXT_POSITIONS} positions for the text); got ${virtualTokens}`);
  }
  const max = spec.maxPositionEmbeddings - virtualTokens;
  if (seqLen > max) {
    const why = virtualTokens > 0 ? ` minus the ${virtualTokens} virtual tokens` : '';
    throw new Error(`--seq-len ${seqLen} exceeds the model's max_position_embeddings (${spec.maxPositionEmbeddings})${why}; use --seq-len ${max} or less`);
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

