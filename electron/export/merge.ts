// Merging a LoRA adapter into its base model: W' = W + scaling * B @ A for
// every adapted linear layer, written as a complete Hugging Face model folder
// in the base's own dtypes (BF16/F16 rounded to nearest even) and its own
// shard layout. Tensors the adapter does not touch are copied byte for byte.
import { copyFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readPeftAdapter } from '../adapters/peft.js';
import { writeFolderAtomic } from '../files/atomic.js';
import type { NativeAddon } from '../engine/native.js';
import { openModelFolder, WEIGHTS_INDEX_FILE } from '../models/folder.js';
import { decodeFloatTensor, encodeFloatTensor } from '../safetensors/convert.js';
import { readSafetensorsHeader, readTensorBytes } from '../safetensors/read.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { copySideFiles } from './model-folder.js';

export interface MergeOptions {
  addon: NativeAddon;
  threads: number;
  /** replace a non-empty outDir (atomically: the old folder stays until the new one is complete) */
  overwrite?: boolean;
  /** how the caller lets a user allow that, for the error message (e.g. "pass --overwrite") */
  howToOverwrite?: string;
}

export interface MergeSummary {
  out: string;
  mergedTensors: number;
  files: string[];
  scaling: number;
}

/** The low-rank factors that update one base weight. */
interface LoraPair {
  A: Float32Array; // [r, in]
  B: Float32Array; // [out, r]
  rank: number;
}

/** Pairs an adapter's lora_A/lora_B tensors under the base weight they update. */
function pairsByBaseWeight(tensors: { name: string; shape: number[]; data: Float32Array }[]): Map<string, LoraPair> {
  const pairs = new Map<string, Partial<LoraPair>>();
  for (const t of tensors) {
    const m = /^(.*)\.lora_([AB])\.weight$/.exec(t.name);
    if (!m) throw new Error(`internal: unexpected adapter tensor ${t.name}`);
    const key = `${m[1]}.weight`;
    const pair = pairs.get(key) ?? {};
    if (m[2] === 'A') {
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

export async function mergeAdapter(modelDir: string, adapterDir: string, outDir: string, options: MergeOptions): Promise<MergeSummary> {
  const base = await openModelFolder(modelDir);
  const adapter = await readPeftAdapter(adapterDir, base.spec);
  const pairs = pairsByBaseWeight(adapter.tensors);
  let merged = 0;
  const files: string[] = [];

  await writeFolderAtomic(outDir, async (temp) => {
    // One output file per base file, holding the same tensors, so a sharded
    // base stays sharded and its index stays valid (same names, dtypes, sizes).
    for (const file of base.files) {
      const header = await readSafetensorsHeader(file);
      const tensors: [string, TensorToWrite][] = [];
      for (const info of header.tensors) {
        const bytes = await readTensorBytes(header, info.name);
        const pair = pairs.get(info.name);
        if (!pair) {
          tensors.push([info.name, { dtype: info.dtype, shape: info.shape, data: bytes }]);
          continue;
        }
        if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
          throw new Error(`${file}: tensor "${info.name}" is stored as ${info.dtype}; only F32, F16 and BF16 weights can be merged`);
        }
        const [out, inF] = info.shape;
        const W = decodeFloatTensor(bytes, info.dtype);
        addLowRankProduct(options.addon, W, out, inF, pair, adapter.scaling, options.threads);
        tensors.push([info.name, { dtype: info.dtype, shape: info.shape, data: encodeFloatTensor(W, info.dtype) }]);
        pairs.delete(info.name);
        merged++;
      }
      await writeSafetensors(join(temp, basename(file)), tensors, header.metadata);
      files.push(basename(file));
    }
    if (pairs.size > 0) throw new Error(`${base.dir}: the adapter updates "${[...pairs.keys()][0]}", which the model files do not hold; merge it into the model it was trained on`);
    if (base.files.length > 1) await copyFile(join(base.dir, WEIGHTS_INDEX_FILE), join(temp, WEIGHTS_INDEX_FILE));
    await copySideFiles(base.dir, temp);
  }, { overwrite: options.overwrite, howToOverwrite: options.howToOverwrite });
  return { out: outDir, mergedTensors: merged, files, scaling: adapter.scaling };
}
