// Training/eval data: JSON Lines, one example per line, in one of two shapes:
//   {"text": "..."}                          tokenized by the model's tokenizer
//                                            (its own special-token rules, then
//                                            EOS appended once)
//   {"input_ids": [...], "labels": [...]}    already tokenized; labels optional
//                                            (= input_ids), -100 = not trained
// Every example is truncated to seqLen tokens. A malformed row is an error
// that names file:line and what is wrong with it.
// A change to exampleFromRow / checkIdArray (the ids and labels a row gives) needs data/token-cache.ts CACHE_VERSION bumped.
import { readFileSync } from 'node:fs';
import { Int32Arena } from './token-arena.js';

export const IGNORE_INDEX = -100;

/** What data loading needs from a tokenizer (ModelTokenizer in electron/models/tokenizer.ts). */
export interface TrainingEncoder {
  /** ids of a training example: special tokens as the tokenizer adds them (BOS for Llama), then EOS once */
  encodeForTraining(text: string): number[];
}

/**
 * One training row. Its token arrays are Int32Array views, usually into a few
 * large buffers shared by the rows of one load (token-arena.ts): read them,
 * never write into them. Where a row leaves the process as JSON, convert
 * explicitly (Array.from): JSON.stringify writes an Int32Array as an object.
 */
export interface Example {
  inputIds: Int32Array;
  labels: Int32Array;
  /** "file:line", for messages (a packed row: the first document's, and how many more) */
  source: string;
  /**
   * Packed rows only: the document each token belongs to (0, 1, ...) and its
   * position inside that document (restarting at 0). Absent: one document.
   */
  segments?: Int32Array;
  positions?: Int32Array;
  /** packed rows only: "file:line" of every document in the row */
  documents?: string[];
}

/**
 * `rows` with their arrays copied into buffers of their own: for a few rows
 * kept from a large load (the export check's), whose views would otherwise
 * keep every buffer of that load alive.
 */
export function detachedRows(rows: readonly Example[]): Example[] {
  const arena = new Int32Arena();
  return rows.map((row) => ({
    ...row,
    inputIds: arena.copy(row.inputIds),
    labels: arena.copy(row.labels),
    ...(row.segments ? { segments: arena.copy(row.segments) } : {}),
    ...(row.positions ? { positions: arena.copy(row.positions) } : {}),
  }));
}

/** What reading a row's tokens needs: an Example's arrays, or plain arrays (a test's rows). */
export interface TokenRowView {
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
  segments?: ArrayLike<number>;
  positions?: ArrayLike<number>;
}

export interface LoadOptions {
  seqLen: number;
  vocabSize: number;
}

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/**
 * Number of tokens the loss counts: labels[1..] that are not -100 (labels
 * shift inside) and, in a packed row, not the first token of a document (the
 * engine does not predict across the seam between two documents).
 */
export function countTrainedTokens(labels: ArrayLike<number>, segments?: ArrayLike<number>): number {
  let n = 0;
  for (let t = 1; t < labels.length; t++) {
    if (labels[t] !== IGNORE_INDEX && (!segments || segments[t] === segments[t - 1])) n++;
  }
  return n;
}

function describeKeys(row: Record<string, unknown>): string {
  const keys = Object.keys(row);
  return keys.length ? keys.join(', ') : 'none';
}

function checkIdArray(value: unknown, field: string, vocabSize: number, allowIgnore: boolean): number[] {
  if (!Array.isArray(value)) throw new DataError(`"${field}" must be an array of token ids`);
  if (value.length === 0) throw new DataError(`"${field}" is empty`);
  value.forEach((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      throw new DataError(`"${field}"[${i}] is ${JSON.stringify(id)}, not an integer token id`);
    }
    if (allowIgnore && id === IGNORE_INDEX) return;
    if (id < 0 || id >= vocabSize) {
      const extra = allowIgnore ? ' (or -100 to skip)' : '';
      throw new DataError(`"${field}"[${i}] = ${id} is outside the vocabulary [0, ${vocabSize})${extra}`);
    }
  });
  return value as number[];
}

/** Turns one parsed JSON row into an example (throws DataError without location). */
export function exampleFromRow(row: unknown, encoder: TrainingEncoder, options: LoadOptions): { inputIds: number[]; labels: number[] } {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new DataError(`expected a JSON object like {"text": "..."}, got ${Array.isArray(row) ? 'an array' : JSON.stringify(row)}`);
  }
  const obj = row as Record<string, unknown>;
  const hasText = 'text' in obj;
  const hasIds = 'input_ids' in obj;
  if (hasText && hasIds) throw new DataError('has both "text" and "input_ids"; give one of them');
  let inputIds: number[];
  let labels: number[];
  if (hasText) {
    if (typeof obj.text !== 'string') throw new DataError(`"text" must be a string, got ${JSON.stringify(obj.text)}`);
    if ('labels' in obj) throw new DataError('"labels" goes with "input_ids", not with "text"');
    inputIds = encoder.encodeForTraining(obj.text);
    const outside = inputIds.find((id) => id < 0 || id >= options.vocabSize);
    if (outside !== undefined) {
      throw new DataError(`the tokenizer gave id ${outside}, outside the model's vocabulary [0, ${options.vocabSize}); the tokenizer does not belong to this model`);
    }
    if (inputIds.length === 0) throw new DataError('"text" tokenizes to no tokens');
    labels = inputIds.slice();
  } else if (hasIds) {
    inputIds = checkIdArray(obj.input_ids, 'input_ids', options.vocabSize, false).slice();
    if ('labels' in obj) {
      labels = checkIdArray(obj.labels, 'labels', options.vocabSize, true).slice();
      if (labels.length !== inputIds.length) {
        throw new DataError(`"labels" has ${labels.length} entries but "input_ids" has ${inputIds.length}; they must match`);
      }
    } else {
      labels = inputIds.slice();
    }
  } else {
    throw new DataError(`needs "text" or "input_ids" (keys found: ${describeKeys(obj)})`);
  }
  if (inputIds.length > options.seqLen) {
    inputIds = inputIds.slice(0, options.seqLen);
    labels = labels.slice(0, options.seqLen);
  }
  return { inputIds, labels };
}

/** Parses JSONL text; `file` is only used in messages. Blank lines are skipped. */
export function parseJsonl(text: string, file: string, encoder: TrainingEncoder, options: LoadOptions): Example[] {
  const examples: Example[] = [];
  const arena = new Int32Arena();
  const lines = text.split('\n');
  lines.forEach((rawLine, index) => {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') return;
    const source = `${file}:${index + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${source}: not valid JSON (${(e as Error).message})`);
    }
    try {
      const { inputIds, labels } = exampleFromRow(row, encoder, options);
      examples.push({ inputIds: arena.copy(inputIds), labels: arena.copy(labels), source });
    } catch (e) {
      if (e instanceof DataError) throw new DataError(`${source}: ${e.message}`);
      throw e;
    }
  });
  if (examples.length === 0) throw new DataError(`${file}: no examples (the file is empty or only blank lines); write one JSON object per line, like {"text": "..."}`);
  return examples;
}

/** Reads and parses a JSONL data file. */
export function loadJsonl(file: string, encoder: TrainingEncoder, options: LoadOptions): Example[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new DataError(`cannot read data file ${file}: ${why}; check the --data path`);
  }
  return parseJsonl(text, file, encoder, options);
}
