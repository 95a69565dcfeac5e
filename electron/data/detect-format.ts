// Which format a file's rows are in, from their fields. Each row votes for
// the first format whose fields it has, in this order (the most specific
// first): tokenized (input_ids), chat (messages | conversations, or prompt
// and completion as lists of messages: TRL's conversational prompt/completion),
// alpaca (instruction + output), completion (prompt + completion), text (text).
// The format with most votes among the first rows wins (ties go to the
// earlier one), so a few broken rows do not change the format; rows that do
// not fit it are then skipped with the field they lack.
// A change to the format this detects needs token-cache.ts CACHE_VERSION bumped.
import { DataError } from '../training/data.js';
import type { ContainerRead } from './containers/records.js';
import { formatProblem } from './problems.js';
import { isAlpacaRow } from './formats/alpaca.js';
import { isChatRow } from './formats/chat.js';
import { isCompletionRow } from './formats/completion.js';
import type { Fields } from './formats/row.js';
import { isTextRow } from './formats/text.js';
import { isTokenizedRow } from './formats/tokenized.js';
import type { DatasetFormat } from './options.js';
import { countOf } from '../text/plural.js';

const RULES: readonly [DatasetFormat, (row: Fields) => boolean][] = [
  ['tokenized', isTokenizedRow],
  ['chat', isChatRow],
  ['alpaca', isAlpacaRow],
  ['completion', isCompletionRow],
  ['text', isTextRow],
];

/** Rows looked at (enough to outvote stray rows, cheap on big files): a file's first rows, all a reader needs to hold before it knows the format (tokenized-file.ts). */
export const FORMAT_SAMPLE_ROWS = 1000;

/** The format one row looks like, or null. */
export function formatOfRow(value: unknown): DatasetFormat | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  for (const [format, matches] of RULES) if (matches(value as Fields)) return format;
  return null;
}

export function detectFormat(read: ContainerRead, file: string): DatasetFormat {
  if (read.kind === 'text') return 'text';
  const votes = new Map<DatasetFormat, number>();
  const sample = read.records.slice(0, FORMAT_SAMPLE_ROWS);
  for (const r of sample) {
    const f = formatOfRow(r.value);
    if (f) votes.set(f, (votes.get(f) ?? 0) + 1);
  }
  let best: DatasetFormat | null = null;
  for (const [format] of RULES) if ((votes.get(format) ?? 0) > (best ? votes.get(best)! : 0)) best = format;
  if (best) return best;
  if (sample.length === 0) throw new DataError(noParseableRows(read, file));
  const fields = new Set<string>();
  for (const r of sample.slice(0, 20)) if (r.value && typeof r.value === 'object' && !Array.isArray(r.value)) Object.keys(r.value).forEach((k) => fields.add(k));
  const found = `its rows have the fields ${[...fields].join(', ') || '(none: they are not objects)'}`;
  throw new DataError(`${file}: cannot tell the dataset format: ${found}. Expected alpaca (instruction, input, output), chat (messages or conversations; or prompt and completion as lists of messages), completion (prompt, completion), text (text) or pre-tokenized (input_ids); rename the fields, or choose the format (the Data page's Format, or --format on the command line)`);
}

/** Broken rows named in the error of a file where none parses (as load-dataset names unusable ones). */
const FIRST_PROBLEMS = 5;

/**
 * Not one row parsed: say which lines are broken and why (the format cannot
 * be told, but that is not the problem to fix), or that the file is empty.
 */
function noParseableRows(read: ContainerRead, file: string): string {
  if (read.problems.length === 0) return `${file}: no rows (the file is empty or only blank lines)`;
  const first = read.problems.slice(0, FIRST_PROBLEMS).map(formatProblem).join('; ');
  return `${file}: none of its ${countOf(read.problems.length, 'row')} can be parsed, so its format cannot be told. First problems: ${first}`;
}
