// The expensive, setting-independent part of reading one data file: its
// container (kind, rows that did not parse, by line) and, for every parsed
// record, prepareRow's result or the reason it cannot be used. Nothing here
// depends on the sequence length, packing or the eval split, so this is what
// the token cache (token-cache.ts) keeps, and loadDataset rebuilds its whole
// result from it (load-dataset.ts), cached or not.
// A change to what this keeps of a file needs token-cache.ts CACHE_VERSION bumped.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { Int32Arena } from '../training/token-arena.js';
import type { ContainerKind, ContainerRead } from './containers/records.js';
import type { DatasetFormat } from './options.js';
import { prepareRow } from './prepare-row.js';
import { RowError, type ProblemKind, type RowProblem } from './problems.js';

/**
 * A record's tokens: prepareRow's result without the rendered text (the
 * loader does not use it), as views into the file's few buffers (a fresh
 * read's arena, or the token cache entry read back), which the loader's
 * examples go on sharing.
 */
export interface TokenizedRow {
  inputIds: Int32Array;
  labels: Int32Array;
  layout: string;
  systemDropped: boolean;
}

/** Why a record cannot be used (a RowError, as prepareRow threw it). */
export interface RecordError {
  kind: ProblemKind;
  message: string;
}

export type TokenizedRecord = { line: number; row: TokenizedRow } | { line: number; error: RecordError };

/** A container problem without its "file:line" source (rebuilt for the path read: `${file}:${line}`). */
export type FileProblem = Omit<RowProblem, 'source'>;

export interface TokenizedFile {
  kind: ContainerKind;
  /** the format the records were prepared in; null for a file without records (no row to tell it by) */
  format: DatasetFormat | null;
  /** rows that could not be parsed, in file order */
  problems: FileProblem[];
  /** every parsed record, in file order */
  records: TokenizedRecord[];
}

/** Tokenizes every record of `read` in `format` (null only when it has no records). */
export function tokenizeFile(read: ContainerRead, format: DatasetFormat | null, tokenizer: ModelTokenizer, completionOnly: boolean, vocabSize: number): TokenizedFile {
  if (format === null && read.records.length > 0) throw new Error('internal: records to tokenize without a format');
  const arena = new Int32Arena();
  const records = read.records.map((record): TokenizedRecord => {
    try {
      const row = prepareRow(record.value, format!, tokenizer, completionOnly, vocabSize);
      return { line: record.line, row: { inputIds: arena.copy(row.inputIds), labels: arena.copy(row.labels), layout: row.layout, systemDropped: row.systemDropped === true } };
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      return { line: record.line, error: { kind: e.kind, message: e.message } };
    }
  });
  return {
    kind: read.kind,
    format: read.records.length > 0 ? format : null,
    problems: read.problems.map(({ line, kind, reason }) => ({ line, kind, reason })),
    records,
  };
}

/** The container problems of `file` as the loader reports them. */
export function problemsOf(tokenized: TokenizedFile, file: string): RowProblem[] {
  return tokenized.problems.map((p) => ({ source: `${file}:${p.line}`, line: p.line, kind: p.kind, reason: p.reason }));
}

/** Whether problemsOf gives `read`'s problems back exactly (every container names a problem `${file}:${line}`). */
export function problemsRebuildable(read: ContainerRead, file: string): boolean {
  return read.problems.every((p) => p.source === `${file}:${p.line}`);
}
