// What a load's rows hold in memory, for the memory check: the bytes of the
// buffers their token arrays are views into (each buffer once, whatever
// share of it the rows use: a view keeps its whole buffer alive), plus an
// allowance per row for the objects on the V8 heap (the example, its array
// views, its source string; a packed row's list of documents).
import type { Example } from './data.js';

// The allowances were measured on Node 20 (x64, no pointer compression): the
// heap a load's examples free when dropped, over 20,000 rows of 1,000 tokens
// (one document a packed row), 36,364 rows of 100-1,000 tokens and 200,000
// rows of 5-44 tokens (41 documents a packed row), unpacked and packed
// (bench/results/data.md, "memory per token"). They agree with those within
// 4% (unpacked: 338 bytes a row).

/** Heap bytes of one example beside its tokens: the object, its "file:line" source string, its two views (inputIds, labels) and its slot in the rows' array. */
export const ROW_OBJECT_BYTES = 340;
/** Heap bytes of each further view (a packed row's segments and positions; a view is 96 bytes). */
export const VIEW_BYTES = 96;
/** Heap bytes of each document of a packed row: its source string, which the row keeps alive, and its entry in `documents`. */
export const DOCUMENT_BYTES = 100;

/** Bytes of the distinct buffers behind `arrays` (each counted once). */
export function backingBytes(arrays: Iterable<ArrayBufferView>): number {
  const seen = new Set<ArrayBufferLike>();
  let bytes = 0;
  for (const a of arrays) {
    if (seen.has(a.buffer)) continue;
    seen.add(a.buffer);
    bytes += a.buffer.byteLength;
  }
  return bytes;
}

/** The rows' token buffers (each once) plus the per-row allowance above. */
export function rowsBytes(rows: readonly Example[]): number {
  let objects = 0;
  function* arrays(): Generator<Int32Array> {
    for (const row of rows) {
      yield row.inputIds;
      yield row.labels;
      if (row.segments) yield row.segments;
      if (row.positions) yield row.positions;
    }
  }
  for (const row of rows) {
    objects += ROW_OBJECT_BYTES + VIEW_BYTES * ((row.segments ? 1 : 0) + (row.positions ? 1 : 0)) + DOCUMENT_BYTES * (row.documents?.length ?? 0);
  }
  return backingBytes(arrays()) + objects;
}
