// Pre-tokenized rows: {"input_ids": [...], "labels": [...]} with labels
// optional (= input_ids) and -100 marking tokens that are not trained. The
// labels decide what is trained, in either masking mode. The checks are the
// ones `train --data` has always applied (training/data.ts).
// A change to the tokens, labels or row errors this gives needs ../token-cache.ts CACHE_VERSION bumped.
import { DataError, exampleFromRow } from '../../training/data.js';
import { RowError } from '../problems.js';
import { asObject, requireArray, type Fields, type TokenRow } from './row.js';

export function isTokenizedRow(row: Fields): boolean {
  return 'input_ids' in row;
}

export function tokenizedRow(value: unknown, vocabSize: number): TokenRow {
  const row = asObject(value);
  // CSV cells hold the arrays as JSON text.
  const ids = { input_ids: requireArray(row, 'input_ids'), ...('labels' in row ? { labels: requireArray(row, 'labels') } : {}) };
  try {
    const noEncoder = { encodeForTraining: () => [] };
    const { inputIds, labels } = exampleFromRow(ids, noEncoder, { seqLen: Number.MAX_SAFE_INTEGER, vocabSize });
    return { kind: 'tokens', inputIds, labels, layout: 'pre-tokenized' };
  } catch (e) {
    if (e instanceof DataError) throw new RowError(/outside the vocabulary/.test(e.message) ? 'vocabulary' : /is empty/.test(e.message) ? 'empty' : 'wrong-type', e.message);
    throw e;
  }
}
