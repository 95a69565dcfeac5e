import { describe, expect, it } from 'vitest';
import { learningRate, lrMultiplier } from './schedule.js';

// Values worked out by hand from transformers' lr_lambda functions
// (optimization.py), warmup 2, 10 training steps.
describe('lr schedules (transformers formulas)', () => {
  it('constant with warmup', () => {
    const got = [0, 1, 2, 3, 9, 10].map((s) => lrMultiplier('constant', s, 2, 10));
    expect(got).toEqual([0, 0.5, 1, 1, 1, 1]);
  });

  it('linear with warmup decays to 0 at the last step', () => {
    // after warmup: (10 - s) / (10 - 2)
    const got = [0, 1, 2, 3, 6, 9, 10, 12].map((s) => lrMultiplier('linear', s, 2, 10));
    expect(got).toEqual([0, 0.5, 1, 7 / 8, 4 / 8, 1 / 8, 0, 0]);
  });

  it('cosine with warmup follows half a cosine', () => {
    // after warmup: 0.5 * (1 + cos(pi * (s - 2) / 8))
    expect(lrMultiplier('cosine', 1, 2, 10)).toBe(0.5);
    expect(lrMultiplier('cosine', 2, 2, 10)).toBe(1);
    expect(lrMultiplier('cosine', 4, 2, 10)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 15); // cos(pi/4)
    expect(lrMultiplier('cosine', 6, 2, 10)).toBeCloseTo(0.5, 15);
    expect(lrMultiplier('cosine', 8, 2, 10)).toBeCloseTo(0.5 * (1 - Math.SQRT1_2), 15);
    expect(lrMultiplier('cosine', 10, 2, 10)).toBe(0);
  });

  it('no warmup: the first step already uses the full rate', () => {
    expect(lrMultiplier('linear', 0, 0, 4)).toBe(1);
    expect(lrMultiplier('linear', 1, 0, 4)).toBe(0.75);
    expect(lrMultiplier('cosine', 0, 0, 4)).toBe(1);
    expect(lrMultiplier('cosine', 2, 0, 4)).toBeCloseTo(0.5, 15);
  });

  it('warmup beyond the run length stays in warmup', () => {
    expect(lrMultiplier('linear', 3, 5, 4)).toBe(3 / 5);
  });

  it('learningRate scales the base rate by lambda(steps taken)', () => {
    const opts = { kind: 'linear' as const, baseLr: 2e-4, warmupSteps: 0, totalSteps: 4 };
    const got = [0, 1, 2, 3].map((s) => learningRate(opts, s));
    [2e-4, 1.5e-4, 1e-4, 0.5e-4].forEach((want, i) => expect(got[i]).toBeCloseTo(want, 18));
  });
});
