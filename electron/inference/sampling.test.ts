import { describe, expect, it } from 'vitest';
import { Prng } from '../random/prng.js';
import { argmax, nucleus, sampleToken, softmaxWithTemperature } from './sampling.js';

describe('sampling', () => {
  const logits = Float32Array.from([1, 3, 2, 3, -1]);

  it('temperature 0 is argmax (first of ties)', () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, { temperature: 0, topP: 0.1 }, new Prng(1))).toBe(1);
  });

  it('softmax with temperature matches the closed form', () => {
    const p = softmaxWithTemperature([0, Math.log(3)], 1);
    expect(p[0]).toBeCloseTo(0.25, 15);
    expect(p[1]).toBeCloseTo(0.75, 15);
    const q = softmaxWithTemperature([0, Math.log(3)], 0.5); // 1 : 9
    expect(q[1]).toBeCloseTo(0.9, 15);
  });

  it('nucleus keeps the smallest most-likely set reaching top-p', () => {
    const p = Float64Array.from([0.1, 0.5, 0.3, 0.1]);
    expect(nucleus(p, 0.5)).toEqual([1]);
    expect(nucleus(p, 0.6)).toEqual([1, 2]);
    expect(nucleus(p, 0.8)).toEqual([1, 2]);
    expect(nucleus(p, 0.81)).toEqual([1, 2, 0]);
    expect(nucleus(p, 1)).toEqual([1, 2, 0, 3]);
  });

  it('draws with the right frequencies and never outside the nucleus', () => {
    const l = [0, Math.log(3), Math.log(6)]; // probabilities 0.1, 0.3, 0.6
    const rng = new Prng(5);
    const counts = [0, 0, 0];
    const n = 30_000;
    for (let i = 0; i < n; i++) counts[sampleToken(l, { temperature: 1, topP: 1 }, rng)]++;
    expect(counts[0] / n).toBeCloseTo(0.1, 1);
    expect(counts[1] / n).toBeCloseTo(0.3, 1);
    expect(counts[2] / n).toBeCloseTo(0.6, 1);
    const topCounts = [0, 0, 0];
    for (let i = 0; i < n; i++) topCounts[sampleToken(l, { temperature: 1, topP: 0.85 }, rng)]++;
    expect(topCounts[0]).toBe(0); // 0.6 + 0.3 reach 0.85 without the 0.1 token
    expect(topCounts[1] / n).toBeCloseTo(1 / 3, 1);
  });

  it('the same seed gives the same draws', () => {
    const draw = (seed: number) => {
      const rng = new Prng(seed);
      return Array.from({ length: 20 }, () => sampleToken(logits, { temperature: 1.3, topP: 0.95 }, rng));
    };
    expect(draw(9)).toEqual(draw(9));
    expect(draw(9)).not.toEqual(draw(10));
  });

  it('rejects bad settings', () => {
    expect(() => sampleToken(logits, { temperature: -1, topP: 1 }, new Prng(1))).toThrow(/temperature/);
    expect(() => sampleToken(logits, { temperature: 1, topP: 0 }, new Prng(1))).toThrow(/top-p/);
  });
});
