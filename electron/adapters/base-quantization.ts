// Which base an adapter was trained against: a run folder's run.json records
// the 4-bit base of a QLoRA run, so eval, generate and merge rebuild the same
// model from the files without being told.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { QuantizationOptions } from '../engine/native.js';

/**
 * The quantization a training run recorded beside its adapter: run.json's
 * config.quantization ({type: 'nf4', blocksize, doubleQuant}), or
 * config.method 'qlora' with the NF4 defaults. null when there is no run.json
 * or it says the base was not quantized.
 */
export async function adapterTrainingQuantization(adapterDir: string): Promise<QuantizationOptions | null> {
  let run: unknown;
  try {
    run = JSON.parse(await readFile(join(adapterDir, 'run.json'), 'utf8'));
  } catch {
    return null;
  }
  const config = (run as { config?: { method?: unknown; quantization?: unknown } } | null)?.config;
  const q = config?.quantization as Partial<QuantizationOptions> | null | undefined;
  if (q && q.type === 'nf4') {
    if (!Number.isInteger(q.blocksize) || typeof q.doubleQuant !== 'boolean') {
      throw new Error(`${join(adapterDir, 'run.json')}: config.quantization must be {type: 'nf4', blocksize, doubleQuant}`);
    }
    return { type: 'nf4', blocksize: q.blocksize!, doubleQuant: q.doubleQuant };
  }
  if (config?.method === 'qlora') return { type: 'nf4', blocksize: 64, doubleQuant: true };
  return null;
}
