// What every container reader (JSONL, JSON array, CSV/TSV, plain text, Parquet)
// produces: the rows as parsed values, each with the physical line it starts
// on, and the rows that could not be parsed, also by line.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import type { RowProblem } from '../problems.js';

export type ContainerKind = 'jsonl' | 'json-array' | 'csv' | 'tsv' | 'text' | 'parquet';

export interface SourceRecord {
  /** 1-based line the row starts on (Parquet: the row number) */
  line: number;
  /** the parsed row: a JSON value, or an object of strings (CSV/TSV, text) */
  value: unknown;
}

export interface ContainerRead {
  kind: ContainerKind;
  records: SourceRecord[];
  /** rows that could not be parsed, in file order */
  problems: RowProblem[];
}

/** Where a reader hands its rows and problems as it finds them, in file order (line-file.ts reads a file a line at a time). */
export interface RecordSink {
  record(record: SourceRecord): void;
  problem(problem: RowProblem): void;
}

/** A sink that keeps what it is handed in `read`. */
export function sinkInto(read: ContainerRead): RecordSink {
  return { record: (r) => read.records.push(r), problem: (p) => read.problems.push(p) };
}

/** A malformed-row problem at `file:line`. */
export function malformed(file: string, line: number, reason: string): RowProblem {
  return { source: `${file}:${line}`, line, kind: 'malformed', reason };
}

/** The text without a leading UTF-8 byte order mark (editors on Windows write one). */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
