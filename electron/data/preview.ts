// The mask preview of one row: its tokens (id and the text piece each stands
// for) and whether each is trained, exactly as loadDataset prepares the row
// (before packing). Plain data for the UI and `data inspect --row N`.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { countTrainedTokens, IGNORE_INDEX } from '../training/data.js';
import { datasetFiles } from './containers/dataset-folder.js';
import { readLineFile } from './containers/line-file.js';
import { containerOfBytes, readDataBytes } from './containers/read-file.js';
import type { ContainerRead, SourceRecord } from './containers/records.js';
import { FORMAT_SAMPLE_ROWS } from './detect-format.js';
import { checkDatasetOptions, fitToLength, resolveFormat } from './load-dataset.js';
import type { DatasetFormat, DatasetOptions } from './options.js';
import { prepareRow } from './prepare-row.js';
import { RowError, type ProblemKind, type RowProblem } from './problems.js';
import { DataError } from '../training/data.js';
import { countOf } from '../text/plural.js';

export interface PreviewToken {
  id: number;
  /** the token decoded on its own (special tokens included; a piece of a multi-byte character shows as U+FFFD) */
  piece: string;
  /** whether the loss learns to predict this token (label not -100; the first token is never predicted) */
  trained: boolean;
}

export interface RowPreview {
  /** 1-based row number in the file (rows counted in file order, unparseable ones included; a folder's on through its files) */
  row: number;
  source: string;
  format: DatasetFormat;
  status: 'used' | 'skipped';
  /** why the row is skipped */
  kind?: ProblemKind;
  reason?: string;
  layout?: string;
  /** the rendered text (absent for pre-tokenized rows) */
  text?: string;
  /** the tokens training gets (after truncation to seqLen) */
  tokens: PreviewToken[];
  /** tokens of the row before truncation */
  length: number;
  /** tokens cut off by truncation */
  truncated: number;
  trainedTokens: number;
}

/** A row of a file, parsed or not. */
type Entry = { line: number; record: SourceRecord | null; problem: RowProblem | null };

/** One file as previewRow reads it: how many rows it has, its `wanted`th (1-based, in file order), and what its format is told by. */
interface PreviewRead {
  rows: number;
  wanted: Entry | null;
  /** its first FORMAT_SAMPLE_ROWS records (all detectFormat looks at) and its problems */
  sample: ContainerRead;
}

/**
 * JSON Lines and plain text are read a line at a time, their rows handed on
 * in file order, keeping only the sample and the row wanted (a file of
 * gigabytes is not held, nor are its parsed rows); other containers whole.
 */
async function readForPreview(file: string, wanted: number): Promise<PreviewRead> {
  const sample: ContainerRead = { kind: 'jsonl', records: [], problems: [] };
  const kept = { rows: 0, wanted: null as Entry | null };
  const lines = await readLineFile(file, (kind) => {
    sample.kind = kind;
    return {
      record: (r) => {
        if (++kept.rows === wanted) kept.wanted = { line: r.line, record: r, problem: null };
        if (sample.records.length < FORMAT_SAMPLE_ROWS) sample.records.push(r);
      },
      problem: (p) => {
        if (++kept.rows === wanted) kept.wanted = { line: p.line, record: null, problem: p };
        sample.problems.push(p);
      },
    };
  });
  if (lines) return { ...kept, sample };
  const read = await containerOfBytes(readDataBytes(file), file);
  // Rows and unparseable rows, merged in file order.
  const entries: Entry[] = [...read.records.map((r) => ({ line: r.line, record: r, problem: null })), ...read.problems.map((p) => ({ line: p.line, record: null, problem: p }))]
    .sort((a, b) => a.line - b.line);
  return { rows: entries.length, wanted: entries[wanted - 1] ?? null, sample: read };
}

export async function previewRow(path: string, row: number, tokenizer: ModelTokenizer, options: DatasetOptions): Promise<RowPreview> {
  checkDatasetOptions(options);
  // A folder's rows are numbered on through its files, in the order training reads them.
  const { files } = datasetFiles(path, options.role ?? 'train');
  let before = 0;
  let found: { file: string; read: ContainerRead; entry: Entry } | null = null;
  let firstRead: { file: string; read: ContainerRead } | null = null;
  for (const file of files) {
    const read = await readForPreview(file, row - before);
    if (!firstRead && read.sample.records.length > 0) firstRead = { file, read: read.sample };
    if (Number.isInteger(row) && row > before && row <= before + read.rows) {
      found = { file, read: read.sample, entry: read.wanted! };
      break;
    }
    before += read.rows;
  }
  if (!found) throw new DataError(`${path}: has ${countOf(before, 'row')}; row ${row} does not exist (rows are numbered from 1)`);
  const { file, read, entry } = found;
  // the format as loadDataset settles it: from the first file with rows
  const format = resolveFormat(firstRead && options.format === 'auto' ? firstRead.read : read, firstRead?.file ?? file, options.format);
  const source = `${file}:${entry.line}`;
  const base = { row, source, format, tokens: [], length: 0, truncated: 0, trainedTokens: 0 };
  if (entry.problem) return { ...base, status: 'skipped', kind: entry.problem.kind, reason: entry.problem.reason };
  try {
    const prepared = prepareRow(entry.record!.value, format, tokenizer, options.completionOnly, options.vocabSize);
    const extra = { layout: prepared.layout, ...(prepared.text !== undefined ? { text: prepared.text } : {}), length: prepared.inputIds.length };
    let fitted: { inputIds: Int32Array; labels: Int32Array; dropped: number };
    try {
      // as the loader has it (tokenized-file.ts); the ids passed prepareRow's vocabulary check, so each is an Int32
      fitted = fitToLength({ inputIds: Int32Array.from(prepared.inputIds), labels: Int32Array.from(prepared.labels) }, options.seqLen);
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      // Still show the tokens: the UI explains why nothing is learned.
      return { ...base, ...extra, status: 'skipped', kind: e.kind, reason: e.message, tokens: toPreviewTokens(prepared.inputIds, prepared.labels, tokenizer) };
    }
    return {
      ...base,
      ...extra,
      status: 'used',
      tokens: toPreviewTokens(fitted.inputIds, fitted.labels, tokenizer),
      truncated: fitted.dropped,
      trainedTokens: countTrainedTokens(fitted.labels),
    };
  } catch (e) {
    if (!(e instanceof RowError)) throw e;
    return { ...base, status: 'skipped', kind: e.kind, reason: e.message };
  }
}

/** Plain objects for the UI (JSON). Array.from, not map: an Int32Array's map would give an Int32Array. */
function toPreviewTokens(ids: ArrayLike<number>, labels: ArrayLike<number>, tokenizer: ModelTokenizer): PreviewToken[] {
  return Array.from(ids, (id, t) => ({ id, piece: tokenizer.decode([id]), trained: t > 0 && labels[t] !== IGNORE_INDEX }));
}
