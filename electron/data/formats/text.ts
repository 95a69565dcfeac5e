// Text rows: {"text"} (and every paragraph of a .txt file). Every token is
// trained: BOS as the tokenizer adds it, the text, then EOS once, the same
// ids as encodeForTraining (what `train --data` has always done).
// A change to the tokens, labels or row errors this gives needs ../token-cache.ts CACHE_VERSION bumped.
import { asObject, requireString, type Fields, type RenderedRow } from './row.js';

export function isTextRow(row: Fields): boolean {
  return 'text' in row;
}

export function renderText(value: unknown): RenderedRow {
  const row = asObject(value);
  const text = requireString(row, 'text');
  return { kind: 'rendered', text, trainSpans: [[0, text.length]], addSpecialTokens: true, appendEos: true, layout: 'plain text' };
}
