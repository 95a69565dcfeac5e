// Model folders saved by bitsandbytes in 4-bit NF4 (transformers, after
// load_in_4bit + save_pretrained): each linear of the decoder blocks is stored
// as U8 packed codes "…weight" plus the tensors that describe them
//   …weight.absmax            fp32 per block, or U8 codes with double quantization
//   …weight.quant_map         fp32 [16], the NF4 code values
//   …weight.nested_absmax     fp32 per 256 absmax values (double quantization)
//   …weight.nested_quant_map  fp32 [256], the signed dynamic map (double quantization)
//   …weight.quant_state.bitsandbytes__nf4   U8: UTF-8 bytes of a JSON object
//       {quant_type, blocksize, dtype, shape, [nested_blocksize, nested_dtype, nested_offset]}
// (see ../shared/reference/nf4.md). They go to the engine as they are: no re-quantization.
import type { Nf4QuantState, QuantizationOptions, WeightRef } from '../engine/native.js';
import type { SafetensorsHeader, SafetensorsTensorInfo } from '../safetensors/format.js';
import { readTensorBytes } from '../safetensors/read.js';
import type { BnbNf4Config } from './config.js';

export const BNB_QUANT_STATE_SUFFIX = '.quant_state.bitsandbytes__nf4';

/** What a bitsandbytes 4-bit folder holds; usable as the engine's QuantizationOptions. */
export interface BnbFolderQuantization extends QuantizationOptions {
  source: 'bitsandbytes';
  /** the dtype the weights had before quantization (quant_state "dtype", e.g. "bfloat16"); merge writes this */
  originalDType: string;
}

const BLOCK_LINEARS = /^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/** The seven linears of every decoder block: what load_in_4bit quantizes (and the engine under nf4). */
export function isBlockLinearWeight(name: string): boolean {
  return BLOCK_LINEARS.test(name);
}

/** A problem with a bitsandbytes tensor: names the file and tensor. */
export class BnbFormatError extends Error {
  constructor(file: string, tensor: string, problem: string) {
    super(`${file}: tensor "${tensor}": ${problem}. The checkpoint was not saved by bitsandbytes 4-bit or is damaged: save or download it again, or use the original (unquantized) model with --quant nf4.`);
    this.name = 'BnbFormatError';
  }
}

export interface QuantStateJson {
  state: Nf4QuantState;
  /** the original dtype name, e.g. "bfloat16" */
  dtype: string;
}

/** Parses the UTF-8 JSON bytes of a "…weight.quant_state.bitsandbytes__nf4" tensor. */
export function parseQuantState(bytes: Uint8Array, file: string, tensor: string): QuantStateJson {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new BnbFormatError(file, tensor, `is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new BnbFormatError(file, tensor, 'is not a JSON object');
  const j = json as Record<string, unknown>;
  if (j.quant_type !== 'nf4') {
    throw new BnbFormatError(file, tensor, `has quant_type ${JSON.stringify(j.quant_type)}; only "nf4" is supported`);
  }
  const int = (key: string): number => {
    const v = j[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new BnbFormatError(file, tensor, `field "${key}" must be a positive integer (found ${JSON.stringify(v)})`);
    return v;
  };
  const shape = j.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d > 0)) {
    throw new BnbFormatError(file, tensor, `field "shape" must be [out, in] (found ${JSON.stringify(shape)})`);
  }
  if (typeof j.dtype !== 'string') throw new BnbFormatError(file, tensor, 'field "dtype" (the original dtype) must be a string');
  const doubleQuant = 'nested_blocksize' in j || 'nested_offset' in j;
  const state: Nf4QuantState = { blocksize: int('blocksize'), shape: shape as number[], doubleQuant };
  if (doubleQuant) {
    state.nestedBlocksize = int('nested_blocksize');
    if (typeof j.nested_offset !== 'number' || !Number.isFinite(j.nested_offset)) {
      throw new BnbFormatError(file, tensor, 'field "nested_offset" must be a number');
    }
    state.nestedOffset = j.nested_offset;
  }
  return { state, dtype: j.dtype };
}

type Located = Map<string, { file: string; info: SafetensorsTensorInfo }>;

/**
 * The WeightRefs of one bitsandbytes 4-bit linear: the U8 codes (with its
 * parsed quant_state) and its companion tensors, located in any shard.
 */
export async function bnbWeightRefs(
  expected: { name: string; shape: number[] },
  located: Located,
  headers: Map<string, SafetensorsHeader>,
  config: BnbNf4Config,
): Promise<{ refs: WeightRef[]; bytes: number; quantization: BnbFolderQuantization }> {
  const main = located.get(expected.name)!;
  const need = (suffix: string) => {
    const found = located.get(expected.name + suffix);
    if (!found) throw new BnbFormatError(main.file, expected.name, `its companion "${expected.name}${suffix}" is missing`);
    return found;
  };
  const qs = need(BNB_QUANT_STATE_SUFFIX);
  const parsed = parseQuantState(await readTensorBytes(headers.get(qs.file)!, qs.info.name), qs.file, qs.info.name);
  const { state } = parsed;
  if (state.shape[0] !== expected.shape[0] || state.shape[1] !== expected.shape[1]) {
    throw new BnbFormatError(qs.file, qs.info.name, `shape [${state.shape.join(', ')}] differs from [${expected.shape.join(', ')}], which config.json implies`);
  }
  if (state.doubleQuant !== config.doubleQuant) {
    throw new BnbFormatError(qs.file, qs.info.name, `${state.doubleQuant ? 'has' : 'lacks'} double quantization but config.json's bnb_4bit_use_double_quant is ${config.doubleQuant}`);
  }
  const ref = (found: { file: string; info: SafetensorsTensorInfo }, nf4?: Nf4QuantState): WeightRef => {
    const { info } = found;
    if (info.dtype !== 'U8' && info.dtype !== 'F32') throw new BnbFormatError(found.file, info.name, `is ${info.dtype}; bitsandbytes stores it as U8 or F32`);
    return { name: info.name, file: found.file, offset: info.offset, dtype: info.dtype, shape: [...info.shape], ...(nf4 ? { nf4 } : {}) };
  };
  const parts = [main, need('.absmax'), need('.quant_map')];
  if (state.doubleQuant) parts.push(need('.nested_absmax'), need('.nested_quant_map'));
  const refs = parts.map((p, i) => ref(p, i === 0 ? state : undefined));
  return {
    refs,
    bytes: parts.reduce((n, p) => n + p.info.byteLength, 0),
    quantization: { type: 'nf4', blocksize: state.blocksize, doubleQuant: state.doubleQuant, source: 'bitsandbytes', originalDType: parsed.dtype },
  };
}
