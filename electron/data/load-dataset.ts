// The top-level dataset loader: a file, a folder of files or a pattern
// (containers/dataset-folder.ts: the files read, in order) -> container rows
// -> format -> tokens and labels (exact mask) -> truncation -> optional
// packing, with a report of everything that happened. Bad rows are skipped
// and reported by file and line; a dataset without one usable row is an
// error naming it and the first reasons.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { countTrainedTokens, DataError, type Example } from '../training/data.js';
import { readContainer } from './containers/read-file.js';
import { datasetFiles, describeDatasetFiles } from './containers/dataset-folder.js';
import type { ContainerRead } from './containers/records.js';
import { detectFormat } from './detect-format.js';
import { chatTemplateOf } from './chat-template.js';
import type { DatasetFormat, DatasetOptions } from './options.js';
import { packExamples } from './pack.js';
import { prepareRow, type PreparedRow } from './prepare-row.js';
import { formatProblem, RowError, type RowProblem } from './problems.js';
import { countByKind, lengthSummary, type DatasetReport } from './report.js';
import { countOf } from '../text/plural.js';

export interface LoadedDataset {
  examples: Example[];
  report: DatasetReport;
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
 * is more likely a wrong folder than a wish).
 */
function sameFormat(read: ContainerRead, file: string, option: DatasetOptions['format'], first: { format: DatasetFormat; file: string } | null): DatasetFormat {
  if (option !== 'auto') return option;
  const format = resolveFormat(read, file, option);
  if (first && format !== first.format) {
    throw new DataError(`${file}: its rows are ${format} rows, but ${first.file}'s are ${first.format} rows; the files of one dataset must hold one format (give the files you mean, or choose the format: --format, or the Data page's Format)`);
  }
  return format;
}

/** Truncates a prepared row to seqLen; the RowError says why a row has nothing left to learn. */
export function fitToLength(row: PreparedRow, seqLen: number): { inputIds: number[]; labels: number[]; dropped: number } {
  const before = countTrainedTokens(row.labels);
  if (before === 0) throw new RowError('nothing-to-learn', 'no token of this row is trained (every label is masked)');
  if (row.inputIds.length <= seqLen) return { inputIds: row.inputIds, labels: row.labels, dropped: 0 };
  const labels = row.labels.slice(0, seqLen);
  if (countTrainedTokens(labels) === 0) {
    throw new RowError('nothing-to-learn', `too long: ${row.inputIds.length} tokens, and the first ${seqLen} (the sequence length) hold no trained token; raise the sequence length or shorten the prompt`);
  }
  return { inputIds: row.inputIds.slice(0, seqLen), labels, dropped: row.inputIds.length - seqLen };
}

export async function loadDataset(path: string, tokenizer: ModelTokenizer, options: DatasetOptions): Promise<LoadedDataset> {
  checkDatasetOptions(options);
  const source = datasetFiles(path, options.role ?? 'train', options.suggestEvalSplit ?? true);
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
  let container: ContainerRead['kind'] | null = null;
  // File by file, so that only one file's parsed rows are held at a time.
  for (const file of source.files) {
    const read = await readContainer(file);
    container ??= read.kind;
    // An empty shard of a folder says nothing about the format (its problems are still reported).
    if (read.records.length > 0 || source.files.length === 1) format = sameFormat(read, file, options.format, format && formatFile ? { format, file: formatFile } : null);
    formatFile ??= format ? file : null;
    const fileProblems: RowProblem[] = [...read.problems];
    for (const record of read.records) {
      const rowSource = `${file}:${record.line}`;
      try {
        const row = prepareRow(record.value, format!, tokenizer, options.completionOnly, options.vocabSize);
        const fitted = fitToLength(row, options.seqLen);
        lengths.push(row.inputIds.length);
        layouts.add(row.layout);
        if (row.systemDropped) systemDroppedRows++;
        if (fitted.dropped > 0) {
          truncatedRows++;
          tokensDropped += fitted.dropped;
        }
        used.push({ inputIds: fitted.inputIds, labels: fitted.labels, source: rowSource });
      } catch (e) {
        if (!(e instanceof RowError)) throw e;
        fileProblems.push({ source: rowSource, line: record.line, kind: e.kind, reason: e.message });
      }
    }
    fileProblems.sort((a, b) => a.line - b.line);
    problems.push(...fileProblems);
    files.push({ path: file, rows: read.records.length + read.problems.length });
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
    notices.push('the model has no chat_template in tokenizer_config.json: conversations are laid out with the fallback template ("### User:" / "### Assistant:", EOS after each answer); prompt the fine-tuned model the same way');
  }
  if (systemDroppedRows > 0) {
    notices.push(`the model's chat template drops system messages: the system prompt of ${systemDroppedRows} of ${countOf(used.length, 'used row')} is not in the training text (neither trained nor seen as context); put it in the user turn, or use a model whose chat template writes system messages`);
  }
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
  return { examples, report };
}
