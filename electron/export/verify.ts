// The reload check of an export: the exported files are read back with the
// project's own loaders and scored on a few rows; the loss must match the
// source adapter's within a tolerance set by what the format can change.
import type { LoraTensor } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import type { NativeAddon, QuantizationOptions } from '../engine/native.js';
import { evaluateExamples, type EvalResult } from '../inference/eval.js';
import type { ModelFolder } from '../models/folder.js';
import { createEngine } from '../session.js';
import { loadDataset, type DatasetFormatOption, type DatasetRole } from '../data/index.js';
import type { ModelTokenizer } from '../models/tokenizer.js';
import { countTrainedTokens, DataError, detachedRows, type Example } from '../training/data.js';
import { splitTrainEval } from '../training/split.js';

/**
 * Relative loss tolerances, |loss_export - loss_source| / loss_source.
 *   peft, gguf f32: the reloaded factors are the same float32 values (the q/k
 *     row permutation is undone exactly), so the loss is the same computation;
 *     1e-6 only leaves room for adapter.lora.alpha being a float32
 *     (alpha * sqrt(r) for rsLoRA rounds at ~6e-8).
 *   gguf f16: each factor is rounded to float16 (relative step 2^-11 ≈ 4.9e-4,
 *     half of it per value); the errors have random signs, so the loss moves
 *     far less than that bound: 1e-3.
 *   merged: W + s·B·A is formed once in float32 and stored in the base dtype,
 *     where base + adapter computes W·x + s·B·(A·x): the rounding differs per
 *     weight by about an ulp of the stored dtype. F32: 1e-4. F16 (2^-11):
 *     1e-3. BF16 (2^-8): 5e-3, the storage rounding of every adapted weight.
 *     A DoRA adapter's rows are then rescaled once by m / ||row|| (the norm
 *     summed in float64, dora-merge.ts), where the engine applies m / n to
 *     W·x + s·B·A·x: one more float32 rounding, well inside the same tolerances.
 *
 *   gguf-model: the merged weights (merged above, in the base dtype) or a full
 *     run's weights converted to one GGUF, read back, dequantized and scored.
 *     A merged adapter's check allows the merged tolerance of its dtype plus
 *     the conversion's (the larger of the two). f32 holds the weights as they
 *     are (1e-6: only the summation order can differ); f16 rounds F32/BF16
 *     weights to 2^-11 relative (an F16 model's stay as they are). bf16 rounds every weight (not only adapted ones) to 2^-8
 *     relative; q8_0 rounds each weight to a step of its 32-block's amax / 127.
 *     Measured (relative loss difference against base + adapter, a random
 *     rank-8 LoRA on all projections, 32 rows of the built-in sample):
 *       demo model (F16, trained):  f32 1.3e-5, f16 1.3e-5, bf16 4.6e-5, q8_0 5.1e-4
 *       tiny F32 Llama (random):    f32 3.3e-9, f16 1.1e-7, bf16 5.5e-6, q8_0 1.5e-6
 *       tiny BF16 Qwen2 (random):   f32/f16/bf16 1.6e-7, q8_0 7.3e-5
 *     (the F16 demo's f32/f16 difference is the merge's own F16 rounding, inside
 *     its merged tolerance). bf16 2e-3 and q8_0 3e-3 are about 40x and 6x the
 *     demo's; a real model's q8_0 perplexity moves by ~1e-4 relative.
 *
 * The reference of a QLoRA adapter (trained on a base held in 4-bit NF4) is
 * the model it was trained as: the adapter on that same 4-bit base
 * (lossWithLora with the run's quantization), never on the 16-bit base. Its
 * merged export is dequant(W4) + s·B·A formed in float32 and stored in the
 * original dtype (merge.ts), so against that reference it differs only by
 * the storage rounding above: the same tolerances apply. Against the 16-bit
 * base it would differ by the whole NF4 quantization error (~0.6% of the
 * loss on the demo model), which is the price of QLoRA, not an export fault.
 * The PEFT and GGUF files hold the same factors, so they too are scored on
 * the 4-bit base (a user loading them must quantize the base the same way
 * to get the trained model; the summary says so).
 */
export const LOSS_TOLERANCE = {
  peft: 1e-6,
  gguf: { f32: 1e-6, f16: 1e-3 },
  merged: { F32: 1e-4, F16: 1e-3, BF16: 5e-3 } as Record<string, number>,
  'gguf-model': { f32: 1e-6, f16: 1e-3, bf16: 2e-3, q8_0: 3e-3 },
} as const;

/** The merged model's tolerance for the dtype it is stored in (an unknown one: BF16's, the loosest). */
export function mergedTolerance(storedDType: string): number {
  return LOSS_TOLERANCE.merged[storedDType] ?? LOSS_TOLERANCE.merged.BF16;
}

export const DEFAULT_CHECK_ROWS = 8;
export const CHECK_BATCH_SIZE = 4;

/** The run's train/eval split, to score its eval rows (training's own split: same rows, seed and order). */
export interface CheckEvalSplit {
  fraction: number;
  seed: number;
}

/**
 * The first `rows` scorable examples of a data file, read the way training
 * reads it (electron/data: any supported container and row format, the same
 * masking), unpacked so each row is one document. With `evalSplit` the rows
 * come from the eval part of training's split: the split is made on the
 * unpacked examples before any packing (electron/training/run.ts
 * loadRunData), so these are the documents the run's eval loss was taken on.
 */
export async function loadCheckRows(file: string, tokenizer: ModelTokenizer, options: { seqLen: number; vocabSize: number; rows: number; format?: DatasetFormatOption; completionOnly?: boolean; evalSplit?: CheckEvalSplit; role?: DatasetRole }): Promise<Example[]> {
  const { examples } = await loadDataset(file, tokenizer, {
    format: options.format ?? 'auto',
    completionOnly: options.completionOnly ?? true,
    pack: false,
    seqLen: options.seqLen,
    vocabSize: options.vocabSize,
    // a folder split by name: the split the rows are meant as (a run's evaluation data: its validation / test split)
    role: options.role ?? 'train',
  });
  const split = options.evalSplit;
  const part = split && split.fraction > 0 ? splitTrainEval(examples, split.fraction, split.seed).eval : examples;
  const scorable = part.filter((e) => countTrainedTokens(e.labels) > 0).slice(0, options.rows);
  if (scorable.length === 0) throw new DataError(`${file}: no ${split && split.fraction > 0 ? 'eval ' : ''}row has a label token to score`);
  // a few rows out of the whole file: copied, so that they do not keep all of its tokens alive
  return detachedRows(scorable);
}

/**
 * Loss of the base model with a LoRA adapter set into a fresh engine; with
 * `quantization`, the base's block linears held in 4-bit NF4 as in QLoRA
 * training (a bitsandbytes 4-bit folder is always held as saved).
 */
export async function lossWithLora(addon: NativeAddon, folder: ModelFolder, lora: AdapterLora, tensors: readonly LoraTensor[], examples: readonly Example[], threads: number, quantization: QuantizationOptions | null = null): Promise<EvalResult> {
  const engine = createEngine(addon, folder, { threads, quantization });
  try {
    engine.setupLora({ ...lora, dropout: 0, seed: 0 });
    for (const t of tensors) engine.setTensor(t.name, t.data);
    return await evaluateExamples(engine, examples, CHECK_BATCH_SIZE);
  } finally {
    engine.dispose();
  }
}

/** Loss of a model folder on its own (a merged export). */
export async function lossOfModel(addon: NativeAddon, folder: ModelFolder, examples: readonly Example[], threads: number): Promise<EvalResult> {
  const engine = createEngine(addon, folder, { threads });
  try {
    return await evaluateExamples(engine, examples, CHECK_BATCH_SIZE);
  } finally {
    engine.dispose();
  }
}

export interface LossCheck {
  format: string;
  loss: number;
  sourceLoss: number;
  relativeDifference: number;
  tolerance: number;
  passed: boolean;
}

export function compareLoss(format: string, loss: number, sourceLoss: number, tolerance: number): LossCheck {
  const relativeDifference = Math.abs(loss - sourceLoss) / Math.max(Math.abs(sourceLoss), 1e-12);
  return { format, loss, sourceLoss, relativeDifference, tolerance, passed: Number.isFinite(loss) && relativeDifference <= tolerance };
}

export class ExportCheckError extends Error {
  /**
   * `source`: what was exported (a full run's model, else an adapter); `cause`: why it failed and what to
   * do, when that is known (a type too coarse for the weights); without it, a bug here
   */
  constructor(readonly check: LossCheck, source: 'adapter' | 'model' = 'adapter', cause?: string) {
    super(`the ${check.format} export failed its reload check: it scores loss ${check.loss} where the source ${source} scores ${check.sourceLoss} (relative difference ${check.relativeDifference.toExponential(2)} > tolerance ${check.tolerance}); nothing was written. ${cause ?? `This is a bug in the exporter: please report it with the ${source}`}`);
    this.name = 'ExportCheckError';
  }
}
