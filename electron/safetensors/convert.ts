// Conversions between float32 and the 16-bit float formats stored in model
// files, and reading small tensors as Float32Array.
//
// f32 -> bf16 and f32 -> f16 round to nearest, ties to even (what PyTorch's
// `.to(torch.bfloat16)` / `.half()` do); NaN stays NaN (made quiet, sign and
// top payload bits kept); values beyond the range become +-Infinity.

import { SafetensorsError, type SafetensorsDType, type SafetensorsHeader } from './format.js';
import { readTensorBytes } from './read.js';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The IEEE-754 bits of `x` rounded to float32. */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The float32 with the given bits. */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

/** bf16 bits of one float32 value (round to nearest even). */
export function f32ToBf16Bits(x: number): number {
  return bf16FromF32BitPattern(f32Bits(x));
}

function bf16FromF32BitPattern(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) {
    // NaN: keep the sign and the top of the payload, force the quiet bit so a
    // payload living only in the low 16 bits does not turn into Infinity.
    return ((bits >>> 16) | 0x0040) & 0xffff;
  }
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

/** float32 value of bf16 bits (exact). */
export function bf16BitsToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** f16 bits of one float32 value (round to nearest even, subnormals included). */
export function f32ToF16Bits(x: number): number {
  return f16FromF32BitPattern(f32Bits(x));
}

function f16FromF32BitPattern(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15; // the exponent in f16's bias
  if (e >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (e <= 0) {
    // f16 subnormal (or zero): value = m * 2^-24 with m = mantissa >> (14 - e)
    if (e < -10) return sign; // below half the smallest subnormal
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) !== 0)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (up to infinity)
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) !== 0)) half++;
  return sign | half;
}

/** float32 value of f16 bits (exact). */
export function f16BitsToF32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    const magnitude = mant * 2 ** -24; // zero or subnormal, exact in float32
    return sign ? -magnitude : magnitude;
  }
  if (exp === 0x1f) return f32FromBits(sign | 0x7f800000 | (mant << 13));
  return f32FromBits(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = bf16FromF32BitPattern(bits[i]);
  return out;
}

export function bf16ToF32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < values.length; i++) bits[i] = values[i] << 16;
  return out;
}

export function f32ToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16FromF32BitPattern(bits[i]);
  return out;
}

export function f16ToF32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16BitsToF32(values[i]);
  return out;
}

/**
 * Decodes little-endian element bytes of a float tensor to Float32Array.
 * F64 values are rounded to float32.
 */
export function decodeFloatTensor(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array {
  // Copy first: the bytes may not be aligned for a typed-array view.
  const copy = bytes.slice();
  switch (dtype) {
    case 'F32':
      return new Float32Array(copy.buffer, 0, copy.length / 4);
    case 'BF16':
      return bf16ToF32(new Uint16Array(copy.buffer, 0, copy.length / 2));
    case 'F16':
      return f16ToF32(new Uint16Array(copy.buffer, 0, copy.length / 2));
    case 'F64':
      return Float32Array.from(new Float64Array(copy.buffer, 0, copy.length / 8));
    default:
      throw new Error(`cannot decode ${dtype} as floating-point values`);
  }
}

/** Encodes float32 values as the little-endian element bytes of `dtype`. */
export function encodeFloatTensor(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  const typed = dtype === 'F32' ? values : dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Largest tensor readTensorAsFloat32 will load by default (64 Mi elements). */
export const SMALL_TENSOR_LIMIT = 64 * 1024 * 1024;

/**
 * Reads one F32/F16/BF16/F64 tensor of a validated file as Float32Array.
 * Meant for small tensors (adapters); the engine memory-maps model weights.
 */
export async function readTensorAsFloat32(header: SafetensorsHeader, name: string, maxElements = SMALL_TENSOR_LIMIT): Promise<{ shape: number[]; data: Float32Array }> {
  const info = header.byName.get(name);
  if (!info) {
    throw new SafetensorsError(header.file, name, 'no such tensor in the file', 'Check the tensor name.');
  }
  if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
    throw new SafetensorsError(header.file, name, `is stored as ${info.dtype}, not a floating-point type this app reads`,
      'Convert the file to F32, F16 or BF16.');
  }
  const elements = info.shape.reduce((a, d) => a * d, 1);
  if (elements > maxElements) {
    throw new SafetensorsError(header.file, name, `has ${elements} elements, more than the ${maxElements} this reader loads at once`,
      'This reader is meant for small tensors such as adapters; large weights are memory-mapped by the engine.');
  }
  const bytes = await readTensorBytes(header, name);
  return { shape: [...info.shape], data: decodeFloatTensor(bytes, info.dtype) };
}
