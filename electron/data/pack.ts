// Packing: several examples concatenated into one row of at most seqLen
// tokens, greedily in the given order (an example that does not fit starts a
// new row). Each example keeps its own segment id (0, 1, ... within the row)
// and positions restarting at 0, so in the engine it attends only to itself
// and the loss skips the seam between two examples (engine.h, struct Batch:
// position t counts only when segments[t+1] == segments[t]). A packed row
// therefore has the same loss as its examples unpacked.
// The rows' arrays are views into a few large buffers (token-arena.ts),
// each taken at its final length: the row boundaries are settled first.
import type { Example } from '../training/data.js';
import { Int32Arena } from '../training/token-arena.js';

/** Packs examples (each at most seqLen long) into rows of at most seqLen tokens. */
export function packExamples(examples: readonly Example[], seqLen: number): Example[] {
  // [first, end) example indices of each row, and its tokens
  const groups: { first: number; end: number; tokens: number }[] = [];
  let current: { first: number; end: number; tokens: number } | null = null;
  for (let i = 0; i < examples.length; i++) {
    const ex = examples[i];
    if (ex.inputIds.length > seqLen) throw new Error(`internal: ${ex.source} has ${ex.inputIds.length} tokens, more than seqLen ${seqLen}; truncate before packing`);
    if (current && current.tokens + ex.inputIds.length > seqLen) {
      groups.push(current);
      current = null;
    }
    current ??= { first: i, end: i, tokens: 0 };
    current.end = i + 1;
    current.tokens += ex.inputIds.length;
  }
  if (current) groups.push(current);
  const arena = new Int32Arena();
  return groups.map(({ first, end, tokens }): Example => {
    const [inputIds, labels, segments, positions] = [arena.take(tokens), arena.take(tokens), arena.take(tokens), arena.take(tokens)];
    // its exact length: one grown by push holds room for 17 strings (some 150 heap bytes a row)
    const sources: string[] = new Array(end - first);
    let at = 0;
    for (let i = first; i < end; i++) {
      const ex = examples[i];
      const n = ex.inputIds.length;
      inputIds.set(ex.inputIds, at);
      labels.set(ex.labels, at);
      segments.fill(i - first, at, at + n);
      for (let t = 0; t < n; t++) positions[at + t] = t;
      at += n;
      sources[i - first] = ex.source;
    }
    // a literal, not a spread: a spread row is a dictionary of about 330 heap bytes, this one 70
    const source = sources.length === 1 ? sources[0] : `${sources[0]} (+${sources.length - 1} packed)`;
    return { inputIds, labels, segments, positions, source, documents: sources };
  });
}
