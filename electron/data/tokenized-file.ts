// The expensive, setting-independent part of reading one data file: its
// container (kind, rows that did not parse, by line) and, for every parsed
// record, prepareRow's result or the reason it cannot be used. Nothing here
// depends on the sequence length, packing or the eval split, so this is what
// the token cache (token-cache.ts) keeps, and loadDataset rebuilds its whole
// result from it (load-dataset.ts), cached or not.
// A change to what this keeps of a file needs token-cache.ts CACHE_VERSION bumped.
import { createHash } from 'node:crypto';
import type { ModelTokenizer } from '../models/tokenizer.js';
import { Int32Arena } from '../training/token-arena.js';
import { readLineFile, type LineFileOptions } from './containers/line-file.js';
import { containerOfBytes, readDataBytes } from './containers/read-file.js';
import type { ContainerKind, ContainerRead, RecordSink, SourceRecord } from './containers/records.js';
import { FORMAT_SAMPLE_ROWS } from './detect-format.js';
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
  const tokens = new RecordTokenizer(tokenizer, completionOnly, vocabSize);
  for (const record of read.records) tokens.add(record, format!);
  return {
    kind: read.kind,
    format: read.records.length > 0 ? format : null,
    problems: read.problems.map(fileProblem),
    records: tokens.records,
  };
}

function fileProblem({ line, kind, reason }: RowProblem): FileProblem {
  return { line, kind, reason };
}

/** Records tokenized one at a time, in file order, their tokens in one arena. */
class RecordTokenizer {
  readonly records: TokenizedRecord[] = [];
  private readonly arena = new Int32Arena();

  constructor(
    private readonly tokenizer: ModelTokenizer,
    private readonly completionOnly: boolean,
    private readonly vocabSize: number,
  ) {}

  add(record: SourceRecord, format: DatasetFormat): void {
    try {
      const row = prepareRow(record.value, format, this.tokenizer, this.completionOnly, this.vocabSize);
      const { arena } = this;
      this.records.push({ line: record.line, row: { inputIds: arena.copy(row.inputIds), labels: arena.copy(row.labels), layout: row.layout, systemDropped: row.systemDropped === true } });
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      this.records.push({ line: record.line, error: { kind: e.kind, message: e.message } });
    }
  }
}

/**
 * The file's format from its first records (`read`: the first
 * FORMAT_SAMPLE_ROWS, or all when it has fewer, and its problems so far;
 * `records`: how many it has so far, 0 only when it has none), as
 * load-dataset.ts settles it; may throw (a format no row has, or not the
 * dataset's).
 */
export type FormatOf = (records: number, read: ContainerRead) => DatasetFormat | null;

/** A file read and tokenized by this load (not from the token cache). */
export interface FreshFile {
  tokenized: TokenizedFile;
  /** what formatOf said */
  format: DatasetFormat | null;
  /** records tokenized */
  records: number;
  /** sha256 of the bytes read, when asked for (the token cache's key) */
  sha256: string | null;
  /** whether problemsOf gives the container's problems back exactly (else the file is not cached) */
  rebuildable: boolean;
}

/**
 * Reads `file` and tokenizes its records. JSON Lines and plain text are read
 * a line at a time (containers/line-file.ts), each record tokenized as it
 * comes once the format is known from the first FORMAT_SAMPLE_ROWS (all
 * detectFormat looks at), so neither the file nor its parsed rows are held,
 * only their tokens; other containers are read whole (read-file.ts). Both
 * give what tokenizeFile gives for the container read whole, errors included.
 */
export async function readAndTokenize(file: string, formatOf: FormatOf, tokenizer: ModelTokenizer, completionOnly: boolean, vocabSize: number, hash: boolean, lineOptions: LineFileOptions = {}): Promise<FreshFile> {
  const tokens = new RecordTokenizer(tokenizer, completionOnly, vocabSize);
  const sinks: TokenizingSink[] = [];
  const lines = await readLineFile(file, (kind) => sinks[sinks.push(new TokenizingSink(kind, formatOf, tokens)) - 1], { ...lineOptions, hash });
  if (lines) {
    const { problems, format } = sinks[0].finish();
    return {
      tokenized: { kind: lines.kind, format: lines.records > 0 ? format : null, problems: problems.map(fileProblem), records: tokens.records },
      format,
      records: lines.records,
      sha256: lines.sha256,
      rebuildable: problemsRebuildable({ kind: lines.kind, records: [], problems }, file),
    };
  }
  const bytes = readDataBytes(file);
  const read = await containerOfBytes(bytes, file);
  const format = formatOf(read.records.length, read);
  return {
    tokenized: tokenizeFile(read, read.records.length > 0 ? format : null, tokenizer, completionOnly, vocabSize),
    format,
    records: read.records.length,
    sha256: hash ? createHash('sha256').update(bytes).digest('hex') : null,
    rebuildable: problemsRebuildable(read, file),
  };
}

/**
 * A line container's records on their way to the tokenizer: the first
 * FORMAT_SAMPLE_ROWS are held until the format is settled, then tokenized,
 * and every later one as it comes (its parsed value then dropped).
 */
class TokenizingSink implements RecordSink {
  private readonly problems: RowProblem[] = [];
  private sample: SourceRecord[] | null = [];
  private records = 0;
  private format: DatasetFormat | null = null;

  constructor(
    private readonly kind: ContainerKind,
    private readonly formatOf: FormatOf,
    private readonly tokens: RecordTokenizer,
  ) {}

  record(record: SourceRecord): void {
    this.records++;
    if (this.sample === null) {
      this.tokens.add(record, this.format!);
      return;
    }
    this.sample.push(record);
    if (this.sample.length === FORMAT_SAMPLE_ROWS) this.settle();
  }

  problem(problem: RowProblem): void {
    this.problems.push(problem);
  }

  /** Every record handed on: the format (settled now when the file has fewer records than the sample) and the problems. */
  finish(): { format: DatasetFormat | null; problems: RowProblem[] } {
    if (this.sample !== null) this.settle();
    return { format: this.format, problems: this.problems };
  }

  private settle(): void {
    const sample = this.sample!;
    this.sample = null;
    this.format = this.formatOf(this.records, { kind: this.kind, records: sample, problems: this.problems });
    if (sample.length > 0 && this.format === null) throw new Error('internal: records to tokenize without a format');
    for (const record of sample) this.tokens.add(record, this.format!);
  }
}

/** The container problems of `file` as the loader reports them. */
export function problemsOf(tokenized: TokenizedFile, file: string): RowProblem[] {
  return tokenized.problems.map((p) => ({ source: `${file}:${p.line}`, line: p.line, kind: p.kind, reason: p.reason }));
}

/** Whether problemsOf gives `read`'s problems back exactly (every container names a problem `${file}:${line}`). */
export function problemsRebuildable(read: ContainerRead, file: string): boolean {
  return read.problems.every((p) => p.source === `${file}:${p.line}`);
}
