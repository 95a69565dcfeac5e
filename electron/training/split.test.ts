import { describe, expect, it } from 'vitest';
import { splitTrainEval } from './split.js';

describe('train/eval split', () => {
  const items = Array.from({ length: 10 }, (_, i) => i);

  it('holds out ceil(fraction * n) items, disjoint, covering everything, in file order', () => {
    const s = splitTrainEval(items, 0.25, 42);
    expect(s.eval.length).toBe(3);
    expect(s.train.length).toBe(7);
    expect([...s.train, ...s.eval].sort((a, b) => a - b)).toEqual(items);
    expect(s.eval).toEqual(s.eval.slice().sort((a, b) => a - b));
  });

  it('is a function of the seed', () => {
    expect(splitTrainEval(items, 0.3, 1)).toEqual(splitTrainEval(items, 0.3, 1));
    const picks = new Set([1, 2, 3, 4, 5, 6].map((seed) => splitTrainEval(items, 0.3, seed).eval.join(',')));
    expect(picks.size).toBeGreaterThan(1);
  });

  it('fraction 0 keeps everything for training; too large a fraction is an error', () => {
    expect(splitTrainEval(items, 0, 1)).toEqual({ train: items, eval: [] });
    expect(() => splitTrainEval([1], 0.5, 1)).toThrow(/leaves nothing to train on/);
    expect(() => splitTrainEval(items, 1, 1)).toThrow(/\[0, 1\)/);
  });
});
