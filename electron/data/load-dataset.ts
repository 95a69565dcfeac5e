// The top-level dataset loader: file -> container rows -> format -> tokens
// and labels (exact mask) -> truncation -> optional packing, with a report of
// everything that happened. Bad rows are skipped and reported by line; a
// file without one usable row is an error naming the file and the first
// reasons.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { countTrainedTokens, DataError, type Example } from '../training/data.js';
import { readContainer } from './containers/read-file.js';
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

export async function loadDataset(file: string, tokenizer: ModelTokenizer, options: DatasetOptions): Promise<LoadedDataset> {
  checkDatasetOptions(options);
  const read = await readContainer(file);
  const format = resolveFormat(read, file, options.format);
  const problems: RowProblem[] = [...read.problems];
  const used: Example[] = [];
  const lengths: number[] = [];
  const layouts = new Set<string>();
  let truncatedRows = 0;
  let tokensDropped = 0;
  let systemDroppedRows = 0;
  for (const record of read.records) {
    const source = `${file}:${record.line}`;
    try {
      const row = prepareRow(record.value, format, tokenizer, options.completionOnly, options.vocabSize);
      const fitted = fitToLength(row, options.seqLen);
      lengths.push(row.inputIds.length);
      layouts.add(row.layout);
      if (row.systemDropped) systemDroppedRows++;
      if (fitted.dropped > 0) {
        truncatedRows++;
        tokensDropped += fitted.dropped;
      }
      used.push({ inputIds: fitted.inputIds, labels: fitted.labels, source });
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      problems.push({ source, line: record.line, kind: e.kind, reason: e.message });
    }
  }
  problems.sort((a, b) => a.line - b.line);
  const total = read.records.length + read.problems.length;
  if (used.length === 0) {
    const first = problems.slice(0, FIRST_REASONS).map(formatProblem).join('; ');
    throw new DataError(total === 0 ? `${file}: no rows (the file is empty or only blank lines)` : `${file}: none of its ${countOf(total, 'row')} can be used (format: ${format}). First problems: ${first}`);
  }
  const examples = options.pack ? packExamples(used, options.seqLen) : used;
  const notices: string[] = [];
  if ((format === 'chat' || format === 'alpaca') && chatTemplateOf(tokenizer).source === 'fallback' && [...layouts].some((l) => l.includes('fallback'))) {
    notices.push('the model has no chat_template in tokenizer_config.json: conversations are laid out with the fallback template ("### User:" / "### Assistant:", EOS after each answer); prompt the fine-tuned model the same way');
  }
  if (systemDroppedRows > 0) {
    notices.push(`the model's chat template drops system messages: the system prompt of ${systemDroppedRows} of ${countOf(used.length, 'used row')} is not in the training text (neither trained nor seen as context); put it in the user turn, or use a model whose chat template writes system messages`);
  }
  if (problems.length > 0) notices.push(`${problems.length} of ${countOf(total, 'row')} skipped; first: ${formatProblem(problems[0])}`);
  const report: DatasetReport = {
    file,
    container: read.kind,
    format,
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
