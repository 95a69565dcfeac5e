// The addon's NF4 ops (ops.nf4Quantize / nf4Dequantize / nf4Matmul /
// loraMatmul) against references computed here in float64 from the algorithm
// of shared/reference/nf4.md (fp32 steps rounded with Math.fround).
import { describe, expect, it } from 'vitest';
import { loadAddon } from './load.js';
import type { Nf4Tensor } from './native.js';

const addon = loadAddon();
const ops = addon.ops;

const NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0].map(Math.fround);
const MID = NF4.slice(0, 15).map((v, k) => Math.fround((v + NF4[k + 1]) / 2));

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function normal(n: number, seed: number, sd: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sd * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return out;
}

/** codes and fp32 absmax of the 4-bit quantization without double quantization */
function refQuantize(w: Float32Array, bs: number): { codes: number[]; absmax: number[] } {
  const codes: number[] = [];
  const absmax: number[] = [];
  for (let lo = 0; lo < w.length; lo += bs) {
    const hi = Math.min(w.length, lo + bs);
    let a = 0;
    for (let i = lo; i < hi; i++) a = Math.max(a, Math.abs(w[i]));
    absmax.push(a);
    const recip = Math.fround(1 / (a === 0 ? Math.fround(1e-38) : a));
    for (let i = lo; i < hi; i++) {
      const s = Math.min(1, Math.max(-1, Math.fround(w[i] * recip)));
      let c = 0;
      while (c < 15 && MID[c] < s) c++;
      codes.push(c);
    }
  }
  return { codes, absmax };
}

const codeAt = (q: Nf4Tensor, i: number) => (i & 1 ? q.codes[i >> 1] & 15 : q.codes[i >> 1] >> 4);

describe('ops.nf4Quantize', () => {
  it('matches the float64 reference bit for bit (partial block, odd count, zero block, midpoints)', () => {
    const rows = 3, cols = 45; // 135 values: odd, two full blocks of 64 and a partial one of 7
    const w = normal(rows * cols, 1, 0.02);
    for (let i = 64; i < 128; i++) w[i] = 0; // a block of zeros
    w[128] = 1; // last (partial) block has absmax 1: put values on midpoints
    for (let k = 0; k < 6; k++) w[129 + k] = MID[k * 2];
    const q = ops.nf4Quantize(w, rows, cols, { blocksize: 64, doubleQuant: false });
    const ref = refQuantize(w, 64);
    expect(q.codes.length).toBe(68);
    expect(Array.from({ length: w.length }, (_, i) => codeAt(q, i))).toEqual(ref.codes);
    expect(Array.from(q.absmax as Float32Array)).toEqual(ref.absmax.map(Math.fround));
    expect(q.codes[67] & 15).toBe(0); // padding nibble
    for (let k = 0; k < 6; k++) expect(codeAt(q, 129 + k)).toBe(k * 2); // on a midpoint: the lower code
    expect(q.residentBytes).toBe(68 + 3 * 4);
  });

  it('double quantization gives 8-bit absmax codes, 256-blocks and 4.127 bits per weight', () => {
    const rows = 576, cols = 576;
    const q = ops.nf4Quantize(normal(rows * cols, 2, 0.02), rows, cols);
    expect(q.absmax).toBeInstanceOf(Uint8Array);
    expect(q.absmax.length).toBe((rows * cols) / 64);
    expect(q.nestedAbsmax!.length).toBe(Math.ceil((rows * cols) / 64 / 256));
    expect(q.nestedQuantMap!.length).toBe(256);
    const bits = (8 * q.residentBytes) / (rows * cols);
    expect(bits).toBeGreaterThan(4.1269);
    expect(bits).toBeLessThan(4.1275);
  });

  it('rejects bad input with a clear error', () => {
    const w = new Float32Array(64);
    expect(() => ops.nf4Quantize(w, 1, 64, { blocksize: 48 })).toThrow(/blocksize must be one of 32, 64/);
    expect(() => ops.nf4Quantize(w, 1, 64, { blocksize: 64.5 })).toThrow(/blocksize must be an integer/);
    expect(() => ops.nf4Quantize(w, 2, 64)).toThrow(/w has 64 values, \[2, 64\] needs 128/);
    w[3] = NaN;
    expect(() => ops.nf4Quantize(w, 1, 64)).toThrow(/non-finite value at row 0, column 3/);
    expect(() => ops.nf4Dequantize({ rows: 2, cols: 64, blocksize: 64, codes: new Uint8Array(10), absmax: new Float32Array(2) }))
      .toThrow(/codes has 10 bytes/);
  });
});

describe('ops.nf4Dequantize / nf4Matmul / loraMatmul', () => {
  const rows = 37, cols = 101; // blocks cross row ends, rows start mid-byte
  const w = normal(rows * cols, 3, 0.05);
  for (const doubleQuant of [false, true]) {
    const q = ops.nf4Quantize(w, rows, cols, { blocksize: 32, doubleQuant });
    const wd = ops.nf4Dequantize(q, 2);

    it(`dequantizes to code * absmax (${doubleQuant ? 'DQ' : 'fp32 absmax'})`, () => {
      for (let i = 0; i < w.length; i++) {
        const b = Math.floor(i / 32);
        const amax = doubleQuant
          ? Math.fround(Math.fround(q.nestedQuantMap![(q.absmax as Uint8Array)[b]] * q.nestedAbsmax![b >> 8]) + q.nestedOffset!)
          : (q.absmax as Float32Array)[b];
        expect(wd[i]).toBe(Math.fround(NF4[codeAt(q, i)] * amax));
      }
      // and the 4-bit weight is close to the original (NF4 error, not a layout bug)
      let err = 0, norm = 0;
      for (let i = 0; i < w.length; i++) err += (wd[i] - w[i]) ** 2, norm += w[i] ** 2;
      expect(Math.sqrt(err / norm)).toBeLessThan(0.15);
    });

    for (const M of [1, 3, 9]) {
      it(`nf4Matmul equals X · dequant(W)^T, M=${M} (${doubleQuant ? 'DQ' : 'fp32 absmax'})`, () => {
        const X = normal(M * cols, 10 + M, 1);
        const Y0 = normal(M * rows, 20 + M, 1);
        const Y = ops.nf4Matmul(X, M, q, { alpha: 0.5, beta: 1, Y: Float32Array.from(Y0), threads: 2 });
        for (let m = 0; m < M; m++)
          for (let n = 0; n < rows; n++) {
            let s = 0, a = 0;
            for (let k = 0; k < cols; k++) s += X[m * cols + k] * wd[n * cols + k], a += Math.abs(X[m * cols + k] * wd[n * cols + k]);
            const want = 0.5 * s + Y0[m * rows + n];
            const bound = 2 * (cols + 4) * 2 ** -23 * (0.5 * a + Math.abs(Y0[m * rows + n]));
            expect(Math.abs(Y[m * rows + n] - want)).toBeLessThanOrEqual(bound);
          }
      });
    }

    it(`loraMatmul adds scale · (X A^T) B^T to the 4-bit base and equals the fp32-base call (${doubleQuant ? 'DQ' : 'fp32 absmax'})`, () => {
      const M = 6, r = 4, scale = 2;
      const X = normal(M * cols, 30, 1), A = normal(r * cols, 31, 0.1), B = normal(rows * r, 32, 0.1);
      const got = ops.loraMatmul(X, M, q, A, B, r, scale, 2);
      const viaFp32 = ops.loraMatmul(X, M, { weight: wd, rows, cols }, A, B, r, scale, 2);
      for (let i = 0; i < got.Y.length; i++) expect(Math.abs(got.Y[i] - viaFp32.Y[i])).toBeLessThan(1e-4);
      for (let m = 0; m < M; m++) {
        const h = Array.from({ length: r }, (_, j) => {
          let s = 0;
          for (let k = 0; k < cols; k++) s += X[m * cols + k] * A[j * cols + k];
          return s;
        });
        for (let j = 0; j < r; j++) expect(got.H[m * r + j]).toBeCloseTo(h[j], 4);
        for (let n = 0; n < rows; n++) {
          let base = 0, lora = 0;
          for (let k = 0; k < cols; k++) base += X[m * cols + k] * wd[n * cols + k];
          for (let j = 0; j < r; j++) lora += h[j] * B[n * r + j];
          expect(got.Y[m * rows + n]).toBeCloseTo(base + scale * lora, 4);
        }
      }
      expect(() => ops.loraMatmul(X, M, q, A.subarray(1), B, r, scale)).toThrow(/A must be \[r, cols\]/);
    });
  }
});
