// Merging a LoRA adapter into its base model: W' = W + scaling * B @ A for
// every adapted linear layer, written as a complete Hugging Face model folder
// in the base's own dtypes (BF16/F16 rounded to nearest even) and its own
// shard layout. Tensors the adapter does not touch are copied byte for byte.
//
// A QLoRA adapter (trained on a 4-bit NF4 base: run.json beside it records
// config.quantization, or the base is a bitsandbytes 4-bit folder) is merged
// as PEFT merges one: every block linear is the dequantized 4-bit weight it
// was trained against, W' = dequant(W4) + scaling * B @ A, saved in the
// base's ORIGINAL dtype (a bitsandbytes folder: its quant_state "dtype";
// config.json loses quantization_config). Merging back into 4 bits would
// re-quantize W + B·A and lose most of the update, so it is not offered.
//
// A DoRA adapter (use_dora) is merged as PEFT merges one: every adapted row
// is rescaled to its trained magnitude, W' = (m / ||W + s·B·A||_row) ⊙_row
// (W + s·B·A), the row norms summed in float64 (dora-merge.ts); the bias is unchanged.
import { readFile } from 'node:fs/promises';
import { copyFileDurable } from '../files/durable-copy.js';
import { basename, join, resolve } from 'node:path';
import { readPeftAdapter } from '../adapters/peft.js';
import { adapterTrainingQuantization } from '../adapters/base-quantization.js';
import { peftTypeOf } from '../adapters/any-adapter.js';
import { writeFileAtomic, writeFolderAtomic } from '../files/atomic.js';
import { refuseKernelPath } from '../files/make-folder.js';
import { refuseOutputOverInputs, type NamedInput } from '../files/output-overlap.js';
import { fullRunAsAdapterMessage, runFolderOf } from '../runs/full-run.js';
import type { NativeAddon, NativeEngine, QuantizationOptions } from '../engine/native.js';
import { BNB_QUANT_STATE_SUFFIX, isBlockLinearWeight } from '../models/bnb.js';
import { dtypeFromTorchName } from '../models/config.js';
import { openModelFolder, WEIGHTS_INDEX_FILE, type ModelFolder } from '../models/folder.js';
import { createEngine, effectiveQuantization } from '../session.js';
import { decodeFloatTensor, encodeFloatTensor } from '../safetensors/convert.js';
import { readSafetensorsHeader, readTensorBytes } from '../safetensors/read.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { copySideFiles } from './model-folder.js';
import { CHAT_TEMPLATE_FILE } from '../models/chat-template-source.js';
import { rescaleRowsToMagnitude, type LoraPair } from './dora-merge.js';

export interface MergeOptions {
  addon: NativeAddon;
  threads: number;
  /** replace a non-empty outDir (atomically: the old folder stays until the new one is complete) */
  overwrite?: boolean;
  /** how the caller lets a user allow that, for the error message (e.g. "pass --overwrite") */
  howToOverwrite?: string;
  /**
   * The adapter was trained on this 4-bit base (QLoRA). Default: read from
   * run.json beside the adapter (config.quantization); a bitsandbytes 4-bit
   * base folder implies its own.
   */
  quantization?: QuantizationOptions | null;
  /** a chat template the merged folder gets as chat_template.jinja (carried-chat-template.ts): the layout the run trained on */
  chatTemplate?: string | null;
}

export interface MergeSummary {
  out: string;
  mergedTensors: number;
  /** every file written into the folder (weights, index, config, tokenizer...) */
  files: string[];
  scaling: number;
  /** the 4-bit base the adapter was merged against (QLoRA), else null */
  quantization: QuantizationOptions | null;
  /** lines for the user (the CLI prints them), e.g. why the merge is not 4-bit */
  notices: string[];
}

/** The dtype a merged 4-bit tensor is written in: the original one. */
function originalDType(base: ModelFolder, stored: string): 'F32' | 'F16' | 'BF16' {
  if (base.quantization) {
    const d = dtypeFromTorchName(base.quantization.originalDType);
    if (d === null) throw new Error(`${base.dir}: the bitsandbytes quant_state dtype "${base.quantization.originalDType}" is not float32, float16 or bfloat16`);
    return d;
  }
  if (stored !== 'F32' && stored !== 'F16' && stored !== 'BF16') throw new Error(`internal: ${stored} base weight`);
  return stored;
}

const BNB_COMPANIONS = ['.absmax', '.quant_map', '.nested_absmax', '.nested_quant_map', BNB_QUANT_STATE_SUFFIX];

/** A bitsandbytes companion tensor ("…weight.absmax" etc.) of a block linear: dropped from a dequantized merge. */
function isBnbCompanion(name: string): boolean {
  const suffix = BNB_COMPANIONS.find((s) => name.endsWith(s));
  return suffix !== undefined && isBlockLinearWeight(name.slice(0, -suffix.length));
}

/** Pairs an adapter's lora_A/lora_B tensors (and DoRA magnitudes) under the base weight they update. */
function pairsByBaseWeight(tensors: { name: string; shape: number[]; data: Float32Array }[]): Map<string, LoraPair> {
  const pairs = new Map<string, Partial<LoraPair>>();
  for (const t of tensors) {
    const m = /^(.*)\.(?:lora_([AB])\.weight|(lora_magnitude_vector))$/.exec(t.name);
    if (!m) throw new Error(`internal: unexpected adapter tensor ${t.name}`);
    const key = `${m[1]}.weight`;
    const pair = pairs.get(key) ?? {};
    if (m[3] !== undefined) {
      pair.magnitude = t.data;
    } else if (m[2] === 'A') {
      pair.A = t.data;
      pair.rank = t.shape[0];
    } else {
      pair.B = t.data;
    }
    pairs.set(key, pair);
  }
  return pairs as Map<string, LoraPair>;
}

/** W (float32, [out, in], in place) += scaling * B @ A, with the engine's GEMM. */
export function addLowRankProduct(addon: NativeAddon, W: Float32Array, out: number, inF: number, pair: LoraPair, scaling: number, threads: number): void {
  // nn layout: C[M,N] = alpha * A[M,K] · B[K,N] + beta * C with M = out, N = in, K = r
  addon.ops.gemm('nn', out, inF, pair.rank, scaling, pair.B, pair.A, 1, W, threads);
}

/**
 * The folders a merge reads, which its --out must neither be, hold nor lie
 * in: the base model, the adapter and, when the adapter is a run's (its top
 * level or a checkpoints/step-N folder), the whole run.
 */
export async function mergeInputs(modelDir: string, adapterDir: string): Promise<NamedInput[]> {
  const inputs: NamedInput[] = [
    { what: 'the model folder', path: modelDir },
    { what: 'the adapter folder', path: adapterDir },
  ];
  const run = await runFolderOf(adapterDir);
  if (run !== null && resolve(run) !== resolve(adapterDir)) inputs.push({ what: "the adapter's run folder", path: run });
  return inputs;
}

export async function mergeAdapter(modelDir: string, adapterDir: string, outDir: string, options: MergeOptions): Promise<MergeSummary> {
  // The destination first: a merge must never replace its own inputs, and a path under /proc would hang Node's mkdir.
  await refuseKernelPath(outDir, '--out');
  await refuseOutputOverInputs(outDir, await mergeInputs(modelDir, adapterDir), 'merge');
  const fullRun = await fullRunAsAdapterMessage(adapterDir, '--adapter', 'it holds no adapter to merge, it already is a whole model');
  if (fullRun !== null) throw new Error(fullRun);
  const base = await openModelFolder(modelDir);
  const peftType = await peftTypeOf(adapterDir);
  if (peftType !== 'LORA') {
    throw new Error(`${adapterDir}: a ${peftType === 'PROMPT_TUNING' ? 'prompt tuning' : 'prefix tuning'} adapter adds virtual tokens, not weight updates, so there is nothing to merge into the base; use it as it is with --adapter (eval, generate) or in PEFT`);
  }
  const adapter = await readPeftAdapter(adapterDir, base.spec);
  const pairs = pairsByBaseWeight(adapter.tensors);
  // run.json lies beside a run's final adapter, two levels up from a checkpoint's
  const requested = options.quantization !== undefined ? options.quantization : await adapterTrainingQuantization((await runFolderOf(adapterDir)) ?? adapterDir);
  const quantization = effectiveQuantization(base, requested);
  const notices: string[] = [];
  // The 4-bit base the adapter was trained on: dequantized weights come from an engine holding it.
  let engine: NativeEngine | null = null;
  if (quantization) {
    engine = createEngine(options.addon, base, { threads: options.threads, quantization });
    notices.push(`QLoRA adapter (NF4, blocksize ${quantization.blocksize}${quantization.doubleQuant ? ', double quantization' : ''}): ` +
      `every block linear is merged into the dequantized 4-bit weight${adapter.lora.dora === true ? ' (as the DoRA note below says)' : ' plus scaling·B·A'}, saved in the original dtype. ` +
      `A merge back into 4 bits would be lossy (re-quantizing W + B·A rounds away most of the update), so it is not written.`);
  }
  if (adapter.lora.dora === true) {
    notices.push(`DoRA adapter: every adapted weight is (m / ||W + scaling·B·A||_row) · (W + scaling·B·A), each row's norm summed in float64 (as PEFT merges use_dora); biases are unchanged.`);
  }
  let merged = 0;
  const files: string[] = [];
  const written = new Map<string, string>(); // tensor -> file, for a sharded index

  try {
    await writeFolderAtomic(outDir, async (temp) => {
      // One output file per base file, holding the same tensors, so a sharded
      // base stays sharded and its index stays valid (same names, dtypes, sizes).
      for (const file of base.files) {
        const header = await readSafetensorsHeader(file);
        const tensors: [string, TensorToWrite][] = [];
        for (const info of header.tensors) {
          if (base.quantization && isBnbCompanion(info.name)) continue;
          const pair = pairs.get(info.name);
          const dequantize = engine !== null && isBlockLinearWeight(info.name);
          if (!pair && !dequantize) {
            tensors.push([info.name, { dtype: info.dtype, shape: info.shape, data: await readTensorBytes(header, info.name) }]);
            written.set(info.name, basename(file));
            continue;
          }
          let W: Float32Array;
          let dtype: 'F32' | 'F16' | 'BF16';
          let shape = info.shape;
          if (dequantize) {
            W = engine!.getTensor(info.name);
            dtype = originalDType(base, info.dtype);
            shape = base.weights.find((w) => w.name === info.name)?.nf4?.shape ?? info.shape;
          } else {
            if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
              throw new Error(`${file}: tensor "${info.name}" is stored as ${info.dtype}; only F32, F16 and BF16 weights can be merged`);
            }
            W = decodeFloatTensor(await readTensorBytes(header, info.name), info.dtype);
            dtype = info.dtype;
          }
          if (pair) {
            const [out, inF] = shape;
            addLowRankProduct(options.addon, W, out, inF, pair, adapter.scaling, options.threads);
            if (pair.magnitude) rescaleRowsToMagnitude(W, out, inF, pair.magnitude, info.name);
            pairs.delete(info.name);
            merged++;
          }
          tensors.push([info.name, { dtype, shape, data: encodeFloatTensor(W, dtype) }]);
          written.set(info.name, basename(file));
        }
        await writeSafetensors(join(temp, basename(file)), tensors, header.metadata);
        files.push(basename(file));
      }
      if (pairs.size > 0) throw new Error(`${base.dir}: the adapter updates "${[...pairs.keys()][0]}", which the model files do not hold; merge it into the model it was trained on`);
      if (base.files.length > 1) {
        if (base.quantization) await writeIndex(join(base.dir, WEIGHTS_INDEX_FILE), join(temp, WEIGHTS_INDEX_FILE), written, temp);
        else await copyFileDurable(join(base.dir, WEIGHTS_INDEX_FILE), join(temp, WEIGHTS_INDEX_FILE));
        files.push(WEIGHTS_INDEX_FILE);
      }
      // Every file of the folder is listed (summaries print them): config, tokenizer and the rest too.
      files.push(...(await copySideFiles(base.dir, temp, base.quantization ? ['config.json'] : [])));
      if (options.chatTemplate) {
        await writeFileAtomic(join(temp, CHAT_TEMPLATE_FILE), options.chatTemplate);
        if (!files.includes(CHAT_TEMPLATE_FILE)) files.push(CHAT_TEMPLATE_FILE);
      }
      if (base.quantization) {
        await writeDequantizedConfig(base, temp);
        files.push('config.json');
      }
    }, { overwrite: options.overwrite, howToOverwrite: options.howToOverwrite, onCleanup: (note) => notices.push(note) });
  } finally {
    engine?.dispose();
  }
  return { out: outDir, mergedTensors: merged, files, scaling: adapter.scaling, quantization, notices };
}

/** config.json of a dequantized bitsandbytes model: no quantization_config, torch_dtype the original dtype. */
async function writeDequantizedConfig(base: ModelFolder, temp: string): Promise<void> {
  const config = JSON.parse(await readFile(join(base.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.quantization_config;
  config.torch_dtype = base.quantization!.originalDType;
  if ('dtype' in config) config.dtype = base.quantization!.originalDType;
  await writeFileAtomic(join(temp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

/** A sharded index for the written tensors (bitsandbytes companions gone, sizes changed). */
async function writeIndex(from: string, to: string, written: Map<string, string>, temp: string): Promise<void> {
  const index = JSON.parse(await readFile(from, 'utf8')) as { metadata?: Record<string, unknown>; weight_map?: Record<string, string> };
  let total = 0;
  for (const f of new Set(written.values())) {
    const h = await readSafetensorsHeader(join(temp, f));
    total += h.tensors.reduce((n, t) => n + t.byteLength, 0);
  }
  const weightMap: Record<string, string> = {};
  for (const name of [...written.keys()].sort()) weightMap[name] = written.get(name)!;
  await writeFileAtomic(to, JSON.stringify({ metadata: { ...(index.metadata ?? {}), total_size: total }, weight_map: weightMap }, null, 2) + '\n');
}
