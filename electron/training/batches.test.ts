import { describe, expect, it } from 'vitest';
import { chunkIntoMicroBatches, countBatchTokens, epochOrder, makeBatch } from './batches.js';

describe('batches', () => {
  const rows = [
    { inputIds: [5, 6, 7], labels: [-100, 6, 7] },
    { inputIds: [8, 9], labels: [8, 9] },
  ];

  it('pads to the longest row with segment -1, label -100, positions restarting per row', () => {
    const b = makeBatch(rows);
    expect(b.batchSize).toBe(2);
    expect(b.seqLen).toBe(3);
    expect(Array.from(b.inputIds)).toEqual([5, 6, 7, 8, 9, 0]);
    expect(Array.from(b.labels)).toEqual([-100, 6, 7, 8, 9, -100]);
    expect(Array.from(b.segments)).toEqual([0, 0, 0, 0, 0, -1]);
    expect(Array.from(b.positions)).toEqual([0, 1, 2, 0, 1, 0]);
    // shifted, non-ignored labels: row 0 -> 6, 7; row 1 -> 9
    expect(countBatchTokens(b)).toBe(3);
  });

  it('pads to a fixed length when asked, and refuses one that is too short', () => {
    const b = makeBatch(rows, 5);
    expect(b.seqLen).toBe(5);
    expect(Array.from(b.segments)).toEqual([0, 0, 0, -1, -1, 0, 0, -1, -1, -1]);
    expect(countBatchTokens(b)).toBe(3);
    expect(() => makeBatch(rows, 2)).toThrow(/shorter than the longest row/);
  });

  it('shuffles per epoch, reproducibly', () => {
    const e0 = epochOrder(20, 42, 0);
    expect(epochOrder(20, 42, 0)).toEqual(e0);
    expect(epochOrder(20, 42, 1)).not.toEqual(e0);
    expect(epochOrder(20, 43, 0)).not.toEqual(e0);
    expect(e0.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('chunks in order with a short last micro-batch', () => {
    expect(chunkIntoMicroBatches(['a', 'b', 'c', 'd', 'e'], [4, 0, 3, 1, 2], 2)).toEqual([['e', 'a'], ['d', 'b'], ['c']]);
    expect(() => chunkIntoMicroBatches(['a'], [0], 0)).toThrow(/positive integer/);
  });
});

describe('packed rows in batches', () => {
  it('copies a row\'s own segments and positions, padding the rest', () => {
    const packed = { inputIds: [5, 6, 7, 8, 9], labels: [5, 6, -100, 8, 9], segments: [0, 0, 1, 1, 1], positions: [0, 1, 0, 1, 2] };
    const b = makeBatch([packed, { inputIds: [3, 4], labels: [3, 4] }], 6);
    expect(Array.from(b.segments)).toEqual([0, 0, 1, 1, 1, -1, 0, 0, -1, -1, -1, -1]);
    expect(Array.from(b.positions)).toEqual([0, 1, 0, 1, 2, 0, 0, 1, 0, 0, 0, 0]);
    expect(Array.from(b.labels)).toEqual([5, 6, -100, 8, 9, -100, 3, 4, -100, -100, -100, -100]);
  });

  it('refuses rows whose segments or positions do not match their tokens', () => {
    expect(() => makeBatch([{ inputIds: [1, 2], labels: [1, 2], segments: [0] }])).toThrow(/1 segment ids for 2 tokens/);
    expect(() => makeBatch([{ inputIds: [1, 2], labels: [1, 2], positions: [0, 1, 2] }])).toThrow(/3 positions for 2 tokens/);
    expect(() => makeBatch([{ inputIds: [1, 2], labels: [1] }])).toThrow(/1 labels for 2 tokens/);
  });
});
