// The trainer's step plan (pure parts): how examples become optimizer steps.
import { describe, expect, it } from 'vitest';
import type { Example } from './data.js';
import { optimizerStepGroups, stepsPerEpoch, totalSteps } from './trainer.js';

const examples: Example[] = Array.from({ length: 10 }, (_, i) => ({ inputIds: Int32Array.of(i, i), labels: Int32Array.of(i, i), source: `f:${i + 1}` }));

describe('optimizer step plan', () => {
  it('counts steps as micro-batches grouped by grad-accum, the last group short', () => {
    expect(stepsPerEpoch(10, 3, 2)).toBe(2); // micro-batches 3,3,3,1 -> groups (2, 2)
    expect(stepsPerEpoch(10, 1, 1)).toBe(10);
    expect(stepsPerEpoch(10, 4, 1)).toBe(3);
    expect(totalSteps(10, { maxSteps: null, epochs: 3, batchSize: 3, gradAccum: 2 })).toBe(6);
    expect(totalSteps(10, { maxSteps: 7, epochs: 1, batchSize: 3, gradAccum: 2 })).toBe(7);
  });

  it('visits every example once per epoch, reshuffled each epoch', () => {
    const gen = optimizerStepGroups(examples, 3, 2, 42);
    const epoch = (steps: number) => {
      const groups = Array.from({ length: steps }, () => gen.next().value as Example[][]);
      return groups;
    };
    const e0 = epoch(2);
    const e1 = epoch(2);
    expect(e0.map((g) => g.map((mb) => mb.length))).toEqual([[3, 3], [3, 1]]);
    const ids = (groups: Example[][][]) => groups.flat(2).map((e) => e.inputIds[0]);
    expect(ids(e0).slice().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ids(e1).slice().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ids(e1)).not.toEqual(ids(e0));
    // the same seed replays the same order
    const again = optimizerStepGroups(examples, 3, 2, 42);
    expect(ids([again.next().value as Example[][], again.next().value as Example[][]])).toEqual(ids(e0));
  });
});
