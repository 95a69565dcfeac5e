// Which settings WOULD fit when a run does not: "try a smaller batch size"
// leaves the user to guess how small, so this finds it. Each change is
// measured with the engine's own estimate (estimateRun: the formula that sizes
// its buffers, exact to the byte), in the order worth trying:
//   1. the largest smaller batch that fits (with the gradient accumulation that keeps the effective batch),
//   2. the longest shorter sequence that fits (a multiple of 64 from 64 up),
//   3. gradient checkpointing,
//   4. a lighter method: QLoRA for LoRA on an unquantized base, LoRA for full fine-tuning;
// and when no single change fits, the first combination that does.
// Memory grows with the batch and with the sequence, so each is a binary
// search: about log2(n) estimates (the formula only: nothing is allocated).
import { PEFT_DEFAULT_TARGETS } from '../adapters/peft-config.js';
import type { NativeAddon } from '../engine/native.js';
import type { ModelFolder } from '../models/folder.js';
import { DEFAULT_NF4, effectiveQuantization } from '../session.js';
import { TRAIN_DEFAULTS, type LoraSettings, type TrainConfig } from './config.js';
import { estimateRun, type EstimateTarget, type MemoryBudget, type MemoryRemedy } from './memory-check.js';

/** The settings an alternative changes, named as the form names them (RunSettings.hyper's keys, and the method). */
export interface FitSettings {
  /** qlora: LoRA on a 4-bit base; lora: instead of full fine-tuning */
  method?: 'lora' | 'qlora';
  batchSize?: number;
  gradAccum?: number;
  seqLen?: number;
  gradientCheckpointing?: true;
}

export interface FitAlternative {
  /** what it changes: one remedy, or several when only a combination fits */
  changes: MemoryRemedy[];
  /** the CLI's words: "--batch-size 2 --grad-accum 4" */
  flags: string;
  /** the same change as the form's values: { batchSize: 2, gradAccum: 4 } */
  form: FitSettings;
  /**
   * a smaller batch: the effective batch (batch x gradient accumulation) before
   * and after; they differ when the new batch does not divide the old effective
   * batch (the accumulation is rounded up: the nearest effective batch above)
   */
  effectiveBatch: { before: number; after: number } | null;
  /** its memory estimate: what the engine would allocate */
  totalBytes: number;
  /**
   * a shorter sequence, when the run's rows were given: how many of them are
   * longer than it (their ends would be cut), and how many of those would be
   * cut inside their prompt, before their first trained token: nothing would
   * be left to learn, and the run would skip them (data/load-dataset.ts
   * fitToLength) — the estimate alone cannot see the data
   */
  longerRows: { longer: number; of: number; skipped: number } | null;
}

/** A training row as a shorter sequence would cut it: its token count, and where its trained tokens start. */
export interface RowShape {
  length: number;
  /** the index of its first trained label (not -100): the prompt and anything masked come before it */
  trainedFrom: number;
}

/** The shapes of a run's training rows (each has a trained token: the loader skipped the rest). */
export function rowShapes(rows: readonly { inputIds: ArrayLike<number>; labels: Int32Array }[]): RowShape[] {
  return rows.map((r) => ({ length: r.inputIds.length, trainedFrom: Math.max(0, r.labels.findIndex((l) => l !== -100)) }));
}

/** What a sequence of seqLen does to the rows: how many it cuts, and how many of those it leaves nothing to learn. */
function cutBy(rows: readonly RowShape[], seqLen: number): { longer: number; of: number; skipped: number } {
  let longer = 0, skipped = 0;
  for (const r of rows) {
    if (r.length <= seqLen) continue;
    longer += 1;
    if (r.trainedFrom >= seqLen) skipped += 1;
  }
  return { longer, of: rows.length, skipped };
}

export interface FitAlternatives {
  /** every single change that fits, in the order above; else the first combination that fits; else none */
  alternatives: FitAlternative[];
  /** the remedies looked at (none when the run fits): what a message says did not help when nothing fits */
  tried: MemoryRemedy[];
  /**
   * when nothing fits: the leanest setting tried (the smallest batch, gradient
   * checkpointing and the lighter method together, those that apply) and its
   * estimate, so a message can say by how much even that misses; null otherwise
   */
  leanest: FitAlternative | null;
  /** searched for a resumed run: only gradient checkpointing could change */
  resumed: boolean;
}

export interface FitSearchOptions {
  /** a resumed run keeps its batch, sequence and method (settings.ts resumedConfig): only checkpointing may change */
  resumed?: boolean;
  /** each training row as the run reads it (rowShapes): a shorter sequence then says how many it would cut, and skip */
  rows?: readonly RowShape[];
  /** what the run's loaded rows hold (rowsBytes), counted in every estimate as the run's own is */
  rowsBytes?: number;
}

/** The sequence lengths offered from 64 up are multiples of it (what people type, and kernel-friendly). */
export const SEQ_LEN_STEP = 64;
/** the shortest sequence a run may have (SETTING_LIMITS.seqLen) */
const MIN_SEQ_LEN = 2;

/** The LoRA a run gets from `--method lora` alone (what full fine-tuning would switch to). */
function defaultLora(): LoraSettings {
  return {
    rank: TRAIN_DEFAULTS.rank, alpha: TRAIN_DEFAULTS.alpha, dropout: TRAIN_DEFAULTS.dropout, targets: [...PEFT_DEFAULT_TARGETS],
    rslora: false, dora: false, init: 'default', layers: null,
  };
}

/** The run with `change` applied, and the LoRA its estimate needs. */
function changedRun(config: TrainConfig, lora: LoraSettings | null, change: FitSettings): { config: TrainConfig; lora: LoraSettings | null } {
  let run: TrainConfig = { ...config };
  let runLora = lora;
  if (change.method === 'qlora') run = { ...run, method: 'qlora', quantization: DEFAULT_NF4 };
  if (change.method === 'lora') {
    runLora = defaultLora();
    run = { ...run, method: 'lora', quantization: null, lora: runLora };
  }
  if (change.batchSize !== undefined) run.batchSize = change.batchSize;
  if (change.gradAccum !== undefined) run.gradAccum = change.gradAccum;
  if (change.seqLen !== undefined) run.seqLen = change.seqLen;
  if (change.gradientCheckpointing) run.gradientCheckpointing = true;
  return { config: run, lora: runLora };
}

/**
 * The largest n in [lo, hi] with fits(n), for a fits that holds up to some
 * point and not beyond (memory grows with the batch and the sequence; on a
 * CUDA device the LoRA kernels' partial sums step down by a few hundred KiB
 * where the rows cross a multiple of 1024, so at sequences of a few tokens
 * a slightly larger batch may also fit: the answer still fits);
 * null when not even lo fits. 1 + ceil(log2(hi - lo + 1)) calls at most.
 */
export function largestFitting(lo: number, hi: number, fits: (n: number) => boolean): number | null {
  if (hi < lo || !fits(lo)) return null;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The flags of a change, in the order of its remedies. */
function flagsOf(changes: MemoryRemedy[], form: FitSettings): string {
  return changes.map((c) => {
    switch (c) {
      case 'smaller-batch': return `--batch-size ${form.batchSize} --grad-accum ${form.gradAccum}`;
      case 'shorter-sequence': return `--seq-len ${form.seqLen}`;
      case 'gradient-checkpointing': return '--gradient-checkpointing';
      case 'lora': return '--method lora';
      case 'qlora': return '--method qlora';
    }
  }).join(' ');
}

/**
 * For a run whose estimate exceeds `budget` (a number: bytes): each single
 * change that makes it fit, with the estimate it would have; when none does,
 * the first combination that does (checkpointing with the largest batch, then
 * checkpointing with the lighter method, then the lighter method with the
 * largest batch, then all three); when none of those does either, no
 * alternative, and the leanest setting tried. A run that fits gets none.
 */
export function fittingAlternatives(addon: NativeAddon, folder: ModelFolder, config: TrainConfig, lora: LoraSettings | null,
  target: EstimateTarget, budget: MemoryBudget | number, options: FitSearchOptions = {}): FitAlternatives {
  const available = typeof budget === 'number' ? budget : budget.availableBytes;
  // one estimate per distinct setting: the combinations revisit the singles' points
  const known = new Map<string, number>();
  const bytesOf = (change: FitSettings): number => {
    const key = JSON.stringify(change);
    let bytes = known.get(key);
    if (bytes === undefined) {
      const run = changedRun(config, lora, change);
      bytes = estimateRun(addon, folder, run.config, run.lora, target, options.rowsBytes ?? 0).totalBytes;
      known.set(key, bytes);
    }
    return bytes;
  };
  const fits = (change: FitSettings) => bytesOf(change) <= available;
  const resumed = options.resumed === true;
  if (fits({})) return { alternatives: [], tried: [], leanest: null, resumed };

  const lighterMethod: 'lora' | 'qlora' | null = resumed ? null
    : config.method === 'full' ? 'lora'
      // a bitsandbytes 4-bit folder is NF4 already: QLoRA would change nothing
      : config.method === 'lora' && effectiveQuantization(folder, config.quantization) === null ? 'qlora' : null;
  const batchCanShrink = !resumed && config.batchSize > 1;
  const seqCanShrink = !resumed && config.seqLen > MIN_SEQ_LEN;
  const checkpointing = !config.gradientCheckpointing;
  const tried: MemoryRemedy[] = [
    ...(batchCanShrink ? ['smaller-batch' as const] : []),
    ...(seqCanShrink ? ['shorter-sequence' as const] : []),
    ...(checkpointing ? ['gradient-checkpointing' as const] : []),
    ...(lighterMethod ? [lighterMethod] : []),
  ];

  const effectiveBefore = config.batchSize * config.gradAccum;
  /** the batch b with the accumulation that keeps the effective batch (rounded up when b does not divide it) */
  const withBatch = (b: number): FitSettings => ({ batchSize: b, gradAccum: Math.ceil(effectiveBefore / b) });
  const alternative = (changes: MemoryRemedy[], form: FitSettings): FitAlternative => ({
    changes,
    flags: flagsOf(changes, form),
    form,
    effectiveBatch: form.batchSize === undefined ? null : { before: effectiveBefore, after: form.batchSize * form.gradAccum! },
    totalBytes: bytesOf(form),
    longerRows: form.seqLen === undefined || options.rows === undefined ? null : cutBy(options.rows, form.seqLen),
  });
  const methodChange: FitSettings = lighterMethod ? { method: lighterMethod } : {};
  const checkpointingOn: FitSettings = checkpointing ? { gradientCheckpointing: true } : {};
  /**
   * The smaller batch that fits with `others` (null: none does), as even as
   * the effective batch allows: with the largest batch that fits, bmax, the
   * accumulation a = ceil(E / bmax) keeps the effective batch E, and the
   * batch ceil(E / a) <= bmax then overshoots E by less than a (bmax itself
   * could overshoot by up to bmax - 1: 1499 x 3 for 3000).
   */
  const largestBatch = (others: FitSettings): FitSettings | null => {
    const most = largestFitting(1, config.batchSize - 1, (n) => fits({ ...others, ...withBatch(n) }));
    if (most === null) return null;
    const accum = Math.ceil(effectiveBefore / most);
    return { ...others, batchSize: Math.ceil(effectiveBefore / accum), gradAccum: accum };
  };

  const singles: FitAlternative[] = [];
  if (batchCanShrink) {
    const form = largestBatch({});
    if (form) singles.push(alternative(['smaller-batch'], form));
  }
  if (seqCanShrink) {
    const seqLen = longestSequence(config.seqLen, (s) => fits({ seqLen: s }));
    if (seqLen !== null) singles.push(alternative(['shorter-sequence'], { seqLen }));
  }
  if (checkpointing && fits(checkpointingOn)) singles.push(alternative(['gradient-checkpointing'], checkpointingOn));
  if (lighterMethod && fits(methodChange)) singles.push(alternative([lighterMethod], methodChange));
  if (singles.length > 0) return { alternatives: singles, tried, leanest: null, resumed };

  // No single change fits: the combinations, in the order worth trying (those whose parts apply).
  const combos: { changes: MemoryRemedy[]; form: () => FitSettings | null }[] = [];
  if (checkpointing && batchCanShrink) combos.push({ changes: ['gradient-checkpointing', 'smaller-batch'], form: () => largestBatch(checkpointingOn) });
  if (checkpointing && lighterMethod) combos.push({ changes: ['gradient-checkpointing', lighterMethod], form: () => ({ ...checkpointingOn, ...methodChange }) });
  if (lighterMethod && batchCanShrink) combos.push({ changes: [lighterMethod, 'smaller-batch'], form: () => largestBatch(methodChange) });
  if (checkpointing && lighterMethod && batchCanShrink) {
    combos.push({ changes: ['gradient-checkpointing', lighterMethod, 'smaller-batch'], form: () => largestBatch({ ...checkpointingOn, ...methodChange }) });
  }
  for (const combo of combos) {
    const form = combo.form();
    if (form && fits(form)) return { alternatives: [alternative(combo.changes, form)], tried, leanest: null, resumed };
  }

  // Nothing fits: the leanest setting tried, to say by how much even that misses.
  const leanestChanges = tried.filter((r) => r !== 'shorter-sequence');
  const leanestForm: FitSettings = { ...checkpointingOn, ...methodChange, ...(batchCanShrink ? withBatch(1) : {}) };
  const leanest = leanestChanges.length > 0 ? alternative(leanestChanges, leanestForm) : null;
  return { alternatives: [], tried, leanest, resumed };
}

/**
 * The longest sequence below `current` that fits: a multiple of SEQ_LEN_STEP
 * when one fits, else the longest shorter one (from MIN_SEQ_LEN); null when
 * none does.
 */
function longestSequence(current: number, fits: (seqLen: number) => boolean): number | null {
  const steps = Math.floor((current - 1) / SEQ_LEN_STEP);
  const k = largestFitting(1, steps, (n) => fits(n * SEQ_LEN_STEP));
  if (k !== null) return k * SEQ_LEN_STEP;
  return largestFitting(MIN_SEQ_LEN, Math.min(SEQ_LEN_STEP - 1, current - 1), fits);
}
