// The top-level dataset loader: a file, a folder of files or a pattern
// (containers/dataset-folder.ts: the files read, in order) -> container rows
// -> format -> tokens and labels (exact mask) -> truncation -> optional
// packing, with a report of everything that happened. Bad rows are skipped
// and reported by file and line; a dataset without one usable row is an
// error naming it and the first reasons. Each file's rows up to their tokens
// (tokenized-file.ts) come from the token cache when it has them
// (token-cache.ts: its key hashes the file in a streaming pass first), else
// are read and tokenized (JSON Lines and plain text a line at a time, each
// row tokenized as it comes: neither the file nor its parsed rows are held);
// truncation, packing and the report run on every load.
// The examples' tokens are Int32Array views into each file's buffers (the
// token cache entry read, or the arena a fresh read filled): truncation makes
// shorter views, and a file's rows are copied out only when they would use
// too little of those buffers (compactFileRows).
import type { ModelTokenizer } from '../models/tokenizer.js';
import { countTrainedTokens, DataError, type Example } from '../training/data.js';
import { datasetFiles, describeDatasetFiles } from './containers/dataset-folder.js';
import type { ContainerKind, ContainerRead } from './containers/records.js';
import { detectFormat } from './detect-format.js';
import { chatTemplateOf } from './chat-template.js';
import type { DatasetFormat, DatasetOptions } from './options.js';
import { packExamples } from './pack.js';
import { formatProblem, RowError, type RowProblem } from './problems.js';
import { countByKind, lengthSummary, type DatasetReport } from './report.js';
import { countOf } from '../text/plural.js';
import { defaultTokenCache, type TokenCache, type TokenCacheLoad } from './token-cache.js';
import { problemsOf, readAndTokenize, type TokenizedFile, type TokenizedRow } from './tokenized-file.js';
import { Int32Arena } from '../training/token-arena.js';
import { backingBytes } from '../training/rows-bytes.js';

export interface LoadedDataset {
  examples: Example[];
  report: DatasetReport;
  /** what this load tokenized itself (not part of the report, which is the same whether the token cache had the files or not) */
  tokenized: TokenizeCount;
}

/** Problems shown in the error of a file with no usable row. */
const FIRST_REASONS = 5;

export function checkDatasetOptions(options: DatasetOptions): void {
  if (!Number.isInteger(options.seqLen) || options.seqLen < 2) throw new DataError(`sequence length must be an integer >= 2, got ${options.seqLen}`);
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < 1) throw new DataError(`vocabulary size must be a positive integer, got ${options.vocabSize}`);
}

/** The format a container's rows are read in ('auto' detects it). */
export function resolveFormat(read: ContainerRead, file: string, format: DatasetOptions['format']): DatasetFormat {
  return format === 'auto' ? detectFormat(read, file) : format;
}

/**
 * The format of one file of a dataset; the files after the first must hold
 * rows of the first one's format (a dataset of chat shards and alpaca shards
 * is more likely a wrong folder than a wish). `detect`: the file's own format.
 */
function sameFormat(detect: () => DatasetFormat, file: string, option: DatasetOptions['format'], first: { format: DatasetFormat; file: string } | null): DatasetFormat {
  if (option !== 'auto') return option;
  const format = detect();
  if (first && format !== first.format) {
    throw new DataError(`${file}: its rows are ${format} rows, but ${first.file}'s are ${first.format} rows; the files of one dataset must hold one format (give the files you mean, or choose the format: --format, or the Data page's Format)`);
  }
  return format;
}

/** What a load tokenized itself and what the token cache gave it (token-cache.ts). */
export interface TokenizeCount {
  /** files parsed and tokenized by this load */
  files: number;
  /** their records: prepareRow ran once for each (0: nothing was tokenized) */
  rows: number;
  /** files whose tokens came from the token cache */
  cachedFiles: number;
}

/** How the files of one load are read: their format so far, the cache, the counts. */
interface FileReading {
  tokenizer: ModelTokenizer;
  options: DatasetOptions;
  /** the dataset has one file (its format is resolved even when it has no rows) */
  single: boolean;
  cache: TokenCacheLoad | null;
  count: TokenizeCount;
}

/**
 * One file of the dataset tokenized (from the token cache when it has the
 * file, else read and tokenized, and kept there), and the dataset's format
 * after it (unchanged by a file without records, unless it is the only one).
 */
async function readTokenized(file: string, reading: FileReading, format: { format: DatasetFormat; file: string } | null): Promise<{ tokenized: TokenizedFile; format: DatasetFormat | null }> {
  const { options, cache, count } = reading;
  const formatOf = (records: number, detect: () => DatasetFormat) => (records > 0 || reading.single ? sameFormat(detect, file, options.format, format) : format?.format ?? null);
  const cached = cache ? await cache.lookup(file) : null;
  if (cached) {
    const tokenized = cached;
    count.cachedFiles++;
    // the entry's format is the file's own (detected, or the option the key holds); an empty file's is detected as a read would be
    const detect = () => tokenized.format ?? detectFormat({ kind: tokenized.kind, records: [], problems: problemsOf(tokenized, file) }, file);
    return { tokenized, format: formatOf(tokenized.records.length, detect) };
  }
  // JSON Lines and plain text a line at a time, each record tokenized as it comes: the file is never held whole
  const fresh = await readAndTokenize(file, (records, read) => formatOf(records, () => resolveFormat(read, file, 'auto')), reading.tokenizer, options.completionOnly, options.vocabSize, cache !== null);
  count.files++;
  count.rows += fresh.records;
  // the key is of the bytes parsed, so a file changed meanwhile is never kept under its new content
  if (cache && fresh.rebuildable) await cache.store(cache.keyOf(file, fresh.sha256!), fresh.tokenized);
  return { tokenized: fresh.tokenized, format: fresh.format };
}

/** Truncates a tokenized row to seqLen (views of its arrays: nothing is copied); the RowError says why a row has nothing left to learn. */
export function fitToLength(row: Pick<TokenizedRow, 'inputIds' | 'labels'>, seqLen: number): { inputIds: Int32Array; labels: Int32Array; dropped: number } {
  const before = countTrainedTokens(row.labels);
  if (before === 0) throw new RowError('nothing-to-learn', 'no token of this row is trained (every label is masked)');
  if (row.inputIds.length <= seqLen) return { inputIds: row.inputIds, labels: row.labels, dropped: 0 };
  const labels = row.labels.subarray(0, seqLen);
  if (countTrainedTokens(labels) === 0) {
    throw new RowError('nothing-to-learn', `too long: ${row.inputIds.length} tokens, and the first ${seqLen} (the sequence length) hold no trained token; raise the sequence length or shorten the prompt`);
  }
  return { inputIds: row.inputIds.subarray(0, seqLen), labels, dropped: row.inputIds.length - seqLen };
}

/**
 * A file's examples are views into the buffers its tokenized rows came in
 * (tokenized-file.ts): kept as they are while they use at least this share of
 * those buffers' bytes, else copied out, so that truncation to a short
 * sequence length, or a file of mostly skipped rows, does not keep the whole
 * file's tokens alive.
 */
const KEEP_VIEWS_SHARE = 3 / 4;

/** `rows` (the used rows of one file) as they are, or copied into `arena` when they would hold on to much more than themselves. */
function compactFileRows(rows: Example[], tokenized: TokenizedFile, arena: Int32Arena): Example[] {
  const held = backingBytes((function* () {
    for (const r of tokenized.records) if ('row' in r) yield* [r.row.inputIds, r.row.labels];
  })());
  const needed = rows.reduce((n, r) => n + r.inputIds.byteLength + r.labels.byteLength, 0);
  if (needed >= KEEP_VIEWS_SHARE * held) return rows;
  return rows.map((r) => ({ inputIds: arena.copy(r.inputIds), labels: arena.copy(r.labels), source: r.source }));
}

/**
 * `cache`: where tokenized files are kept (default: the studio home's, as the
 * environment bounds it; null: none). The result is the same with or without
 * it; `tokenized` says what this load tokenized itself.
 */
export async function loadDataset(path: string, tokenizer: ModelTokenizer, options: DatasetOptions, cache?: TokenCache | null): Promise<LoadedDataset> {
  checkDatasetOptions(options);
  const source = datasetFiles(path, options.role ?? 'train', options.suggestEvalSplit ?? true);
  const tokenCache = cache === undefined ? defaultTokenCache() : cache;
  const reading: FileReading = {
    tokenizer,
    options,
    single: source.files.length === 1,
    cache: tokenCache ? tokenCache.forLoad(tokenizer, options) : null,
    count: { files: 0, rows: 0, cachedFiles: 0 },
  };
  const problems: RowProblem[] = [];
  const used: Example[] = [];
  const lengths: number[] = [];
  const layouts = new Set<string>();
  const files: DatasetReport['files'] = [];
  let truncatedRows = 0;
  let tokensDropped = 0;
  let systemDroppedRows = 0;
  let format: DatasetFormat | null = null;
  let formatFile: string | null = null;
  let container: ContainerKind | null = null;
  // rows copied out of a file's buffers (compactFileRows)
  const arena = new Int32Arena();
  // File by file, so that only one file's parsed rows are held at a time.
  for (const file of source.files) {
    const next = await readTokenized(file, reading, format && formatFile ? { format, file: formatFile } : null);
    const tokenized = next.tokenized;
    format = next.format;
    container ??= tokenized.kind;
    formatFile ??= format ? file : null;
    const fileProblems: RowProblem[] = problemsOf(tokenized, file);
    const fileUsed: Example[] = [];
    for (const record of tokenized.records) {
      const rowSource = `${file}:${record.line}`;
      try {
        if ('error' in record) throw new RowError(record.error.kind, record.error.message);
        const row = record.row;
        const fitted = fitToLength(row, options.seqLen);
        lengths.push(row.inputIds.length);
        layouts.add(row.layout);
        if (row.systemDropped) systemDroppedRows++;
        if (fitted.dropped > 0) {
          truncatedRows++;
          tokensDropped += fitted.dropped;
        }
        fileUsed.push({ inputIds: fitted.inputIds, labels: fitted.labels, source: rowSource });
      } catch (e) {
        if (!(e instanceof RowError)) throw e;
        fileProblems.push({ source: rowSource, line: record.line, kind: e.kind, reason: e.message });
      }
    }
    for (const row of compactFileRows(fileUsed, tokenized, arena)) used.push(row);
    fileProblems.sort((a, b) => a.line - b.line);
    // one by one: a spread of a million skipped rows overflows the call stack (a 600 MB file whose prompts pass --seq-len)
    for (const p of fileProblems) problems.push(p);
    files.push({ path: file, rows: tokenized.records.length + tokenized.problems.length });
  }
  const total = files.reduce((n, f) => n + f.rows, 0);
  if (used.length === 0) {
    const first = problems.slice(0, FIRST_REASONS).map(formatProblem).join('; ');
    const empty = source.files.length > 1 ? 'its files are empty or only blank lines' : 'the file is empty or only blank lines';
    if (total === 0) throw new DataError(`${path}: no rows (${empty})`);
    // not one row parsed, in any of a folder's files: no format to name
    if (format === null) throw new DataError(`${path}: not one of its ${countOf(total, 'row')} could be read as a row. First problems: ${first}`);
    throw new DataError(`${path}: none of its ${countOf(total, 'row')} can be used (format: ${format}). First problems: ${first}`);
  }
  // a row was used, so some file had rows: its format and container are known
  const [rowFormat, rowContainer] = [format!, container!];
  const examples = options.pack ? packExamples(used, options.seqLen) : used;
  // each notice about the files read names the path given
  const read = describeDatasetFiles(source);
  const notices: string[] = [...(read ? [`read ${read}`] : []), ...source.notes].map((n) => `${path}: ${n}`);
  if ((format === 'chat' || format === 'alpaca') && chatTemplateOf(tokenizer).source === 'fallback' && [...layouts].some((l) => l.includes('fallback'))) {
    notices.push('the model has no chat_template (in chat_template.jinja or tokenizer_config.json): conversations are laid out with the fallback template ("### User:" / "### Assistant:", EOS after each answer); prompt the fine-tuned model the same way (its merged and GGUF model exports carry that template)');
  }
  if (systemDroppedRows > 0) {
    notices.push(`the model's chat template drops system messages: the system prompt of ${systemDroppedRows} of ${countOf(used.length, 'used row')} is not in the training text (neither trained nor seen as context); put it in the user turn, or use a model whose chat template writes system messages`);
  }
  if (reading.cache?.notice) notices.push(reading.cache.notice);
  if (problems.length > 0) notices.push(`${problems.length} of ${countOf(total, 'row')} skipped; first: ${formatProblem(problems[0])}`);
  const report: DatasetReport = {
    file: path,
    files,
    split: source.split,
    container: rowContainer,
    format: rowFormat,
    formatDetected: options.format === 'auto',
    layouts: [...layouts],
    notices,
    seqLen: options.seqLen,
    completionOnly: options.completionOnly,
    pack: options.pack,
    rows: { total, used: used.length, skipped: problems.length },
    skipped: problems,
    skippedByKind: countByKind(problems),
    lengths: lengthSummary(lengths),
    truncation: { rows: truncatedRows, tokensDropped },
    examples: examples.length,
    packedRows: examples.filter((e) => (e.documents?.length ?? 1) > 1).length,
    tokens: {
      total: examples.reduce((n, e) => n + e.inputIds.length, 0),
      trained: examples.reduce((n, e) => n + countTrainedTokens(e.labels, e.segments), 0),
    },
  };
  return { examples, report, tokenized: reading.count };
}
