// Packing: several examples concatenated into one row of at most seqLen
// tokens, greedily in the given order (an example that does not fit starts a
// new row). Each example keeps its own segment id (0, 1, ... within the row)
// and positions restarting at 0, so in the engine it attends only to itself
// and the loss skips the seam between two examples (engine.h, struct Batch:
// position t counts only when segments[t+1] == segments[t]). A packed row
// therefore has the same loss as its examples unpacked.
import type { Example } from '../training/data.js';

/** Packs examples (each at most seqLen long) into rows of at most seqLen tokens. */
export function packExamples(examples: readonly Example[], seqLen: number): Example[] {
  const rows: Example[] = [];
  let current: { inputIds: number[]; labels: number[]; segments: number[]; positions: number[]; sources: string[] } | null = null;
  const flush = () => {
    if (!current) return;
    const { sources, ...row } = current;
    rows.push({ ...row, source: sources.length === 1 ? sources[0] : `${sources[0]} (+${sources.length - 1} packed)`, documents: sources });
    current = null;
  };
  for (const ex of examples) {
    if (ex.inputIds.length > seqLen) throw new Error(`internal: ${ex.source} has ${ex.inputIds.length} tokens, more than seqLen ${seqLen}; truncate before packing`);
    if (current && current.inputIds.length + ex.inputIds.length > seqLen) flush();
    current ??= { inputIds: [], labels: [], segments: [], positions: [], sources: [] };
    const segment = current.sources.length;
    for (let t = 0; t < ex.inputIds.length; t++) {
      current.inputIds.push(ex.inputIds[t]);
      current.labels.push(ex.labels[t]);
      current.segments.push(segment);
      current.positions.push(t);
    }
    current.sources.push(ex.source);
  }
  flush();
  return rows;
}
