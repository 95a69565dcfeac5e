// What a format makes of one row, before tokenization, and the field checks
// the formats share (each problem names the field and says what it should be).
// A change to the tokens, labels or row errors this gives needs ../token-cache.ts CACHE_VERSION bumped.
import { RowError } from '../problems.js';

/** [start, end) character offsets into a rendered text. */
export type CharSpan = readonly [number, number];

/** A row laid out as text, with the character ranges that are trained in completion-only mode. */
export interface RenderedRow {
  kind: 'rendered';
  text: string;
  /** trained character ranges (assistant turns with their end-of-turn token; the completion) */
  trainSpans: CharSpan[];
  /** put the tokenizer's post-processor tokens (BOS) around the text: true for prompts we lay out, false for chat templates (they write BOS themselves, as apply_chat_template does) */
  addSpecialTokens: boolean;
  /** append EOS (trained) after the text unless it already ends with it */
  appendEos: boolean;
  /** which layout was used, for the report ("chat template", "Alpaca prompt as alpaca-lora writes it", ...) */
  layout: string;
  /** true when the row has a system message and the chat template left it out of the text (the report says so) */
  systemDropped?: boolean;
}

/** A row that is already tokens (pre-tokenized rows, and plain text encoded as for `train --data` before). */
export interface TokenRow {
  kind: 'tokens';
  inputIds: number[];
  labels: number[];
  layout: string;
}

export type FormattedRow = RenderedRow | TokenRow;

export type Fields = Record<string, unknown>;

/**
 * Every field some format reads (chat, alpaca, completion, text,
 * pre-tokenized): a columnar file's other columns (embeddings, ids, scores)
 * need not be read at all.
 */
export const ROW_FIELDS: readonly string[] = ['messages', 'conversations', 'system', 'instruction', 'input', 'output', 'prompt', 'completion', 'text', 'input_ids', 'labels'];

/** A value as a field's error shows it: a timestamp is named, not printed as if it were text. */
export function shownValue(v: unknown): string {
  if (v instanceof Date) return `a timestamp (${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  return JSON.stringify(v)?.slice(0, 60) ?? String(v);
}

export function asObject(value: unknown): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RowError('wrong-type', `expected an object with named fields, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)?.slice(0, 60)}`);
  }
  return value as Fields;
}

export function requireString(row: Fields, field: string, allowEmpty = false): string {
  if (row[field] === null) throw new RowError('missing-field', `"${field}" is null; it must be a string`);
  if (!(field in row) || row[field] === undefined) {
    throw new RowError('missing-field', `missing "${field}" (fields found: ${Object.keys(row).join(', ') || 'none'})`);
  }
  const v = row[field];
  if (typeof v !== 'string') throw new RowError('wrong-type', `"${field}" must be a string, got ${shownValue(v)}`);
  if (!allowEmpty && v.trim() === '') throw new RowError('empty', `"${field}" is empty`);
  return v;
}

export function optionalString(row: Fields, field: string): string {
  const v = row[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new RowError('wrong-type', `"${field}" must be a string, got ${shownValue(v)}`);
  return v;
}

/**
 * An array field. CSV/TSV cells are strings, so a cell holding JSON
 * ("[...]") is parsed: chat and pre-tokenized rows can live in a spreadsheet.
 */
export function requireArray(row: Fields, field: string): unknown[] {
  let v = row[field];
  if (v === null) throw new RowError('missing-field', `"${field}" is null; it must be an array`);
  if (v === undefined) throw new RowError('missing-field', `missing "${field}" (fields found: ${Object.keys(row).join(', ') || 'none'})`);
  if (typeof v === 'string' && v.trimStart().startsWith('[')) {
    try {
      v = JSON.parse(v);
    } catch (e) {
      throw new RowError('malformed', `"${field}" holds text that is not a valid JSON array (${(e as Error).message})`);
    }
  }
  if (!Array.isArray(v)) throw new RowError('wrong-type', `"${field}" must be an array, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v;
}
