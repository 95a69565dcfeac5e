// Examples -> engine batches. Each row is one sequence (segment 0) padded to
// the longest row of the batch (or a fixed length); padding has segment -1,
// label -100 and token id 0, so it neither attends, is attended to, nor
// counts in the loss. Positions restart at 0 in every row. A packed row
// (electron/data/pack.ts) brings its own segments and positions: one segment
// per document, positions restarting at 0 in each.
import type { Batch } from '../engine/native.js';
import { IGNORE_INDEX, type Example, type TokenRowView } from './data.js';
import { Prng, shuffledIndices } from '../random/prng.js';

export const PAD_SEGMENT = -1;

/** Builds one [rows, seqLen] batch; seqLen = longest row unless padTo is given. */
export function makeBatch(rows: readonly TokenRowView[], padTo?: number): Batch {
  if (rows.length === 0) throw new Error('makeBatch needs at least one example');
  const longest = Math.max(...rows.map((r) => r.inputIds.length));
  const seqLen = padTo ?? longest;
  if (seqLen < longest) throw new Error(`padTo ${seqLen} is shorter than the longest row (${longest})`);
  const n = rows.length * seqLen;
  const batch: Batch = {
    batchSize: rows.length,
    seqLen,
    inputIds: new Int32Array(n),
    labels: new Int32Array(n).fill(IGNORE_INDEX),
    segments: new Int32Array(n).fill(PAD_SEGMENT),
    positions: new Int32Array(n),
  };
  rows.forEach((row, b) => {
    const base = b * seqLen;
    const len = row.inputIds.length;
    if (row.labels.length !== len) throw new Error(`row ${b}: ${row.labels.length} labels for ${len} tokens`);
    if (row.segments && row.segments.length !== len) throw new Error(`row ${b}: ${row.segments.length} segment ids for ${len} tokens`);
    if (row.positions && row.positions.length !== len) throw new Error(`row ${b}: ${row.positions.length} positions for ${len} tokens`);
    batch.inputIds.set(row.inputIds, base);
    batch.labels.set(row.labels, base);
    if (row.segments) batch.segments.set(row.segments, base);
    else batch.segments.fill(0, base, base + len);
    if (row.positions) batch.positions.set(row.positions, base);
    else for (let t = 0; t < len; t++) batch.positions[base + t] = t;
  });
  return batch;
}

/**
 * Label tokens the engine's loss counts in this batch, by its own rule
 * (native-addon/core/model/batch_inputs.cpp): position t predicts labels[t + 1]
 * when that label is not -100 and both tokens belong to the same document
 * (segment >= 0), so never across a packed row's seam (transformers' padding-free
 * packing masks each document's first label for the same reason) nor from padding.
 * Under prompt tuning (virtualTokens > 0) the last virtual token predicts the
 * row's first label too (methods/prompt_tuning.cpp, as PEFT shifts its labels).
 * A step's loss and gradient are divided by this count, so it must be the
 * engine's: one token more than it sums (a seam, a row's first token) would make
 * the training loss and gradient smaller than the evaluation's for the same rows.
 */
export function countBatchTokens(batch: Batch, virtualTokens = 0): number {
  let n = 0;
  const { labels, segments } = batch;
  for (let b = 0; b < batch.batchSize; b++) {
    const base = b * batch.seqLen;
    if (virtualTokens > 0 && labels[base] !== IGNORE_INDEX && segments[base] >= 0) n++;
    for (let t = base + 1; t < base + batch.seqLen; t++) {
      if (labels[t] !== IGNORE_INDEX && segments[t - 1] >= 0 && segments[t] === segments[t - 1]) n++;
    }
  }
  return n;
}

/** The example order of one epoch: a seeded shuffle, different for every epoch. */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  return shuffledIndices(count, new Prng(seed, epoch));
}

/** Groups examples (in the given order) into micro-batches of up to batchSize rows. */
export function chunkIntoMicroBatches<T>(items: readonly T[], order: readonly number[], batchSize: number): T[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  const out: T[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize).map((k) => items[k]));
  return out;
}

/** Consecutive batches of examples in file order (for evaluation). */
export function sequentialBatches(examples: readonly Example[], batchSize: number): Batch[] {
  const fileOrder = Array.from({ length: examples.length }, (_, i) => i);
  return chunkIntoMicroBatches(examples, fileOrder, batchSize).map((rows) => makeBatch(rows));
}
