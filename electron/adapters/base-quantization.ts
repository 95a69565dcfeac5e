// Which base an adapter was trained against: a run folder's run.json records
// the 4-bit base of a QLoRA run, so eval, generate and merge rebuild the same
// model from the files without being told.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { QuantizationOptions } from '../engine/native.js';

/**
 * What an adapter's README says when it was trained on a 4-bit base (QLoRA):
 * how to load the base as it was trained on, with transformers'
 * BitsAndBytesConfig (PEFT loads the adapter on whatever base it is given;
 * on the 16-bit one its outputs are close, not the same). Undefined otherwise.
 */
export function quantizedBaseCardNote(q: QuantizationOptions | null): string | undefined {
  if (q === null) return undefined;
  return [
    '## Base model in 4 bits (QLoRA)',
    '',
    `This adapter was trained on the base model quantized to 4-bit NF4 (blocksize ${q.blocksize}, double quantization ${q.doubleQuant ? 'on' : 'off'}), as bitsandbytes does it. To run it as it was trained, load the base that way:`,
    '',
    '```python',
    'from transformers import AutoModelForCausalLM, BitsAndBytesConfig',
    `bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=${q.doubleQuant ? 'True' : 'False'})`,
    'base = AutoModelForCausalLM.from_pretrained(BASE, quantization_config=bnb)  # BASE: the base model above',
    '```',
    '',
    `On the 16-bit base its outputs are close to these, not the same.${q.blocksize !== 64 ? ` (BitsAndBytesConfig always quantizes in blocks of 64; this run used ${q.blocksize}, so no transformers load reproduces its base exactly.)` : ''}`,
  ].join('\n');
}

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
