import { describe, expect, it } from 'vitest';
import { FixtureRng } from '../testing/fixture-rng.js';
import {
  bf16BitsToF32,
  bf16ToF32,
  decodeFloatTensor,
  encodeFloatTensor,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
} from './convert.js';

/** A Float32Array holding exactly these bit patterns (no trip through JS numbers, which may canonicalise NaN). */
function f32WithBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** f16 value computed in float64 from the definition of the format. */
function f16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (e - 15) * (1 + m / 1024);
}

describe('bf16', () => {
  it('converts known values', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-2)).toBe(0xc000);
    expect(f32ToBf16Bits(0)).toBe(0x0000);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(f32ToBf16Bits(3.140625)).toBe(0x4049); // exactly representable
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
  });

  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-8 is halfway between 0x3F80 (1.0) and 0x3F81: the even one wins.
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    // 1 + 3 * 2^-8 is halfway between 0x3F81 and 0x3F82: the even one wins.
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    // just above halfway rounds up, just below rounds down
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16Bits(1 + 2 ** -8 - 2 ** -20)).toBe(0x3f80);
    // the largest float32 rounds up to infinity
    expect(f32ToBf16(f32WithBits([0x7f7fffff]))[0]).toBe(0x7f80);
  });

  it('keeps NaN a NaN, with its sign, even when the payload is only in the low bits', () => {
    const out = f32ToBf16(f32WithBits([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000]));
    expect(Array.from(out)).toEqual([0x7fc0, 0xffc0, 0x7fc0, 0x7fe0]);
    for (const h of out) expect(Number.isNaN(bf16BitsToF32(h))).toBe(true);
  });

  it('bf16 -> f32 -> bf16 is the identity on all 65536 patterns (NaNs stay NaN)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if (isNaN) expect(Number.isNaN(bf16BitsToF32(back[i]))).toBe(true);
      else if (back[i] !== i) expect(back[i]).toBe(i);
    }
  });

  it('picks the nearest bf16 for random float32 values', () => {
    const rng = new FixtureRng(7);
    const values = new Float32Array(20000).map(() => (rng.uniform() - 0.5) * 2 ** (rng.uniform() * 40 - 20));
    const bits = f32ToBf16(values);
    const worse: number[] = [];
    for (let i = 0; i < values.length; i++) {
      const x = values[i];
      const error = Math.abs(x - bf16BitsToF32(bits[i]));
      for (const neighbour of [bits[i] - 1, bits[i] + 1]) {
        const other = bf16BitsToF32(neighbour & 0xffff);
        if (!Number.isNaN(other) && Math.abs(x - other) < error) worse.push(x);
      }
    }
    expect(worse).toEqual([]);
  });
});

describe('f16', () => {
  it('converts known values', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff); // largest finite
    expect(f32ToF16Bits(0.1)).toBe(0x2e66);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1e-10)).toBe(0x0000);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
  });

  it('rounds to nearest, ties to even, through subnormals and into infinity', () => {
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway between 65504 and 65536 (= infinity): even wins
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // halfway between 0 and the smallest subnormal
    expect(f32ToF16Bits(3 * 2 ** -26)).toBe(0x0001); // above halfway
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 subnormal steps: tie, goes to even 2
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie between 0x3C00 and 0x3C01
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 0x3C01 and 0x3C02
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // tie at the subnormal/normal boundary: rounds up to 0x0400 (even)
  });

  it('keeps NaN a NaN', () => {
    const out = f32ToF16(f32WithBits([0x7fc00000, 0xffc00000, 0x7f800001]));
    expect(Array.from(out)).toEqual([0x7e00, 0xfe00, 0x7e00]);
  });

  it('f16 -> f32 matches the definition of the format on all 65536 patterns, and converts back exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f32 = f16ToF32(all);
    const back = f32ToF16(f32);
    for (let i = 0; i < 65536; i++) {
      const ref = f16Reference(i);
      if (Number.isNaN(ref)) {
        expect(Number.isNaN(f32[i])).toBe(true);
        expect(Number.isNaN(f16BitsToF32(back[i]))).toBe(true);
        continue;
      }
      if (f32[i] !== ref || back[i] !== i) {
        expect([i, f32[i], back[i]]).toEqual([i, ref, i]);
      }
    }
  });

  it('picks the nearest f16 for random float32 values', () => {
    const rng = new FixtureRng(11);
    const values = new Float32Array(20000).map(() => (rng.uniform() - 0.5) * 2 ** (rng.uniform() * 44 - 28));
    const bits = f32ToF16(values);
    const worse: number[] = [];
    for (let i = 0; i < values.length; i++) {
      const x = values[i];
      const error = Math.abs(x - f16Reference(bits[i]));
      for (const neighbour of [bits[i] - 1, bits[i] + 1]) {
        const other = f16Reference(neighbour & 0xffff);
        if (!Number.isNaN(other) && Math.abs(x - other) < error) worse.push(x);
      }
    }
    expect(worse).toEqual([]);
  });
});

describe('decodeFloatTensor / encodeFloatTensor', () => {
  it('decodes little-endian bytes of each float type, also from an unaligned offset', () => {
    const backing = new Uint8Array(1 + 8);
    backing.set([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0], 1); // 1.0, -2.0 as F32
    expect(Array.from(decodeFloatTensor(backing.subarray(1), 'F32'))).toEqual([1, -2]);
    expect(Array.from(decodeFloatTensor(new Uint8Array([0x80, 0x3f, 0x00, 0xc0]), 'BF16'))).toEqual([1, -2]);
    expect(Array.from(decodeFloatTensor(new Uint8Array([0x00, 0x3c, 0x00, 0xc0]), 'F16'))).toEqual([1, -2]);
    const f64 = new Uint8Array(new Float64Array([0.5, 3]).buffer);
    expect(Array.from(decodeFloatTensor(f64, 'F64'))).toEqual([0.5, 3]);
    expect(() => decodeFloatTensor(new Uint8Array(4), 'I32')).toThrow(/cannot decode I32/);
  });

  it('encodes to the bytes the decoder reads back', () => {
    const values = new Float32Array([1, -2, 0.5]);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      expect(Array.from(decodeFloatTensor(encodeFloatTensor(values, dtype), dtype))).toEqual([1, -2, 0.5]);
    }
  });
});
