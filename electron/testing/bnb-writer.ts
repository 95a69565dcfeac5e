// Writes a model folder exactly as bitsandbytes + transformers save a model
// loaded with load_in_4bit (NF4): the block linears as U8 packed codes with
// bitsandbytes' companion tensors and quant_state JSON, everything else as
// given, and quantization_config in config.json. The quantizer here is an
// independent TypeScript transcription of ../shared/reference/nf4.md (fp32
// arithmetic via Math.fround), so a test can compare it with the engine's.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isBlockLinearWeight } from '../models/bnb.js';
import { encodeFloatTensor } from '../safetensors/convert.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import type { TinyModel } from './tiny-model.js';

const f = Math.fround;

export const NF4_CODES = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
].map(f);

/** torch.linspace(start, end, steps) in fp32 (the step in fp32, both halves from their end; a fused multiply-add, as in double then rounded once). */
function linspace(startValue: number, endValue: number, steps: number): number[] {
  const start = f(startValue); // torch casts the Python scalars to the tensor's dtype first
  const end = f(endValue);
  const step = f((end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from({ length: steps }, (_, i) => (i < half ? f(step * i + start) : f(-step * (steps - i - 1) + end)));
}

/** bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), ascending. */
export function dynamicMapSigned(): number[] {
  const data: number[] = [];
  for (let i = 0; i < 7; i++) {
    const b = linspace(0.1, 1, 2 ** i + 1);
    const scale = f(10 ** (i - 6));
    for (let k = 0; k + 1 < b.length; k++) {
      const v = f(f(f(b[k] + b[k + 1]) / 2) * scale);
      data.push(v, -v);
    }
  }
  data.push(0, 1);
  while (data.length < 256) data.push(0);
  return data.sort((a, b) => a - b);
}

/** Blockwise absmax quantization to the nearest entry of a sorted map, ties to the lower one. */
function quantizeBlockwise(x: Float32Array, blocksize: number, map: number[]): { codes: Uint8Array; absmax: Float32Array } {
  const mid = map.slice(0, -1).map((m, i) => f(f(m + map[i + 1]) / 2));
  const blocks = Math.ceil(x.length / blocksize);
  const codes = new Uint8Array(x.length);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const lo = b * blocksize;
    const hi = Math.min(x.length, lo + blocksize);
    let amax = 0;
    for (let i = lo; i < hi; i++) amax = Math.max(amax, Math.abs(x[i]));
    absmax[b] = amax;
    const recip = f(1 / (amax === 0 ? f(1e-38) : amax));
    for (let i = lo; i < hi; i++) {
      const s = Math.min(1, Math.max(-1, f(x[i] * recip)));
      let q = 0;
      while (q < mid.length && mid[q] < s) q++; // bucketize(right=False): on a midpoint, the lower entry
      codes[i] = q;
    }
  }
  return { codes, absmax };
}

export interface BnbTensors {
  packed: Uint8Array;
  absmax: Float32Array | Uint8Array;
  nestedAbsmax: Float32Array | null;
  nestedOffset: number;
}

/** NF4 (+ double quantization) of one weight, bitsandbytes' layout. */
export function quantizeNf4(w: Float32Array, blocksize: number, doubleQuant: boolean): BnbTensors {
  const { codes, absmax } = quantizeBlockwise(w, blocksize, NF4_CODES);
  const packed = new Uint8Array(Math.ceil(w.length / 2));
  for (let i = 0; i < w.length; i++) packed[i >> 1] |= i & 1 ? codes[i] : codes[i] << 4;
  if (!doubleQuant) return { packed, absmax, nestedAbsmax: null, nestedOffset: 0 };
  let sum = 0;
  for (const a of absmax) sum += a;
  const offset = f(sum / absmax.length);
  const centered = absmax.map((a) => f(a - offset));
  const nested = quantizeBlockwise(centered, 256, dynamicMapSigned());
  return { packed, absmax: nested.codes, nestedAbsmax: nested.absmax, nestedOffset: offset };
}

/** The fp32 values bitsandbytes dequantizes a weight to. */
export function dequantizeNf4(t: BnbTensors, n: number, blocksize: number): Float32Array {
  const map = dynamicMapSigned();
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const b = Math.floor(i / blocksize);
    const amax = t.nestedAbsmax ? f(f(map[t.absmax[b]] * t.nestedAbsmax[Math.floor(b / 256)]) + t.nestedOffset) : t.absmax[b];
    const code = i & 1 ? t.packed[i >> 1] & 15 : t.packed[i >> 1] >> 4;
    out[i] = f(NF4_CODES[code] * amax);
  }
  return out;
}

const TORCH_NAMES = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/** Saves `model` (a tiny model folder) as bitsandbytes would after load_in_4bit; returns the quantized tensors. */
export async function writeBnbFolder(model: TinyModel, dir: string, options: { blocksize?: number; doubleQuant?: boolean } = {}): Promise<Map<string, BnbTensors>> {
  const blocksize = options.blocksize ?? 64;
  const doubleQuant = options.doubleQuant ?? true;
  await mkdir(dir, { recursive: true });
  const tensors: [string, TensorToWrite][] = [];
  const quantized = new Map<string, BnbTensors>();
  for (const [name, t] of model.tensors) {
    if (!isBlockLinearWeight(name)) {
      tensors.push([name, { dtype: t.dtype, shape: t.shape, data: encodeFloatTensor(t.data, t.dtype) }]);
      continue;
    }
    const q = quantizeNf4(t.data, blocksize, doubleQuant);
    quantized.set(name, q);
    tensors.push([name, { dtype: 'U8', shape: [q.packed.length, 1], data: q.packed }]);
    tensors.push([`${name}.quant_map`, { dtype: 'F32', shape: [16], data: Float32Array.from(NF4_CODES) }]);
    const state: Record<string, unknown> = { quant_type: 'nf4', blocksize, dtype: TORCH_NAMES[t.dtype], shape: t.shape };
    if (doubleQuant) {
      tensors.push([`${name}.absmax`, { dtype: 'U8', shape: [q.absmax.length], data: q.absmax }]);
      tensors.push([`${name}.nested_absmax`, { dtype: 'F32', shape: [q.nestedAbsmax!.length], data: q.nestedAbsmax! }]);
      tensors.push([`${name}.nested_quant_map`, { dtype: 'F32', shape: [256], data: Float32Array.from(dynamicMapSigned()) }]);
      Object.assign(state, { nested_blocksize: 256, nested_dtype: 'float32', nested_offset: q.nestedOffset });
    } else {
      tensors.push([`${name}.absmax`, { dtype: 'F32', shape: [q.absmax.length], data: q.absmax }]);
    }
    const json = new TextEncoder().encode(JSON.stringify(state));
    tensors.push([`${name}.quant_state.bitsandbytes__nf4`, { dtype: 'U8', shape: [json.length], data: json }]);
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const config = JSON.parse(await readFile(join(model.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  config.quantization_config = {
    quant_method: 'bitsandbytes',
    load_in_4bit: true,
    load_in_8bit: false,
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: doubleQuant,
    bnb_4bit_compute_dtype: 'bfloat16',
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) await copyFile(join(model.dir, f), join(dir, f));
  return quantized;
}
