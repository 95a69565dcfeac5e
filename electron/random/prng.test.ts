import { describe, expect, it } from 'vitest';
import { Prng, shuffledIndices } from './prng.js';

describe('Prng', () => {
  it('is reproducible for a seed and differs across seeds and streams', () => {
    const a = Array.from({ length: 8 }, ((r) => () => r.nextUint32())(new Prng(42)));
    const b = Array.from({ length: 8 }, ((r) => () => r.nextUint32())(new Prng(42)));
    const c = Array.from({ length: 8 }, ((r) => () => r.nextUint32())(new Prng(43)));
    const d = Array.from({ length: 8 }, ((r) => () => r.nextUint32())(new Prng(42, 1)));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(d);
    for (const x of a) expect(Number.isInteger(x) && x >= 0 && x < 2 ** 32).toBe(true);
  });

  it('nextFloat is uniform on [0,1): mean and variance of many draws', () => {
    const r = new Prng(7);
    const n = 200_000;
    let sum = 0;
    let sq = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.nextFloat();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
      sq += u * u;
    }
    expect(outside).toBe(0);
    const mean = sum / n;
    // standard error of the mean is sqrt(1/12/n) ~ 6.5e-4; allow 5 sigma
    expect(Math.abs(mean - 0.5)).toBeLessThan(3.3e-3);
    expect(Math.abs(sq / n - mean * mean - 1 / 12)).toBeLessThan(3e-3);
  });

  it('nextInt covers every value with even counts (chi-square)', () => {
    const r = new Prng(1);
    const k = 10;
    const n = 100_000;
    const counts = new Array(k).fill(0);
    for (let i = 0; i < n; i++) counts[r.nextInt(k)]++;
    const expected = n / k;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(30); // 9 degrees of freedom: p < 0.001 beyond 27.9
  });

  it('shuffledIndices is a permutation', () => {
    const p = shuffledIndices(50, new Prng(3));
    expect(p.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});
