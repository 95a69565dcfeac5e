// checkRun reads the run's data as the run will (run-time.ts runRows, THE
// rows loadRunData gives), and a read that fails refuses the run before it
// starts, as `train` refuses it: the same error, on the form's field that
// changes it. The common case is a sequence length shorter than every row's
// prompt (no row keeps a token to learn): it is told on Sequence length, with
// the shortest length that keeps every row usable, counted from where each
// row's trained tokens start in the rows read without that limit.
import { countOf } from '../text/plural.js';
import type { FieldError } from '../api/contract.js';
import type { ModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import type { TrainConfig } from '../training/config.js';
import { IGNORE_INDEX, type Example } from '../training/data.js';
import { loadRunData, runVirtualTokens } from '../training/run.js';
import { inAppWords } from './app-wording.js';
import { runRows, type RunRows } from './run-time.js';

export type RunDataRead = { rows: RunRows; error: null } | { rows: null; error: FieldError };

/** The longest sequence the run could be given on this model (the Sequence length field's max). */
function longestSeqLen(config: TrainConfig, folder: ModelFolder): number {
  return folder.spec.maxPositionEmbeddings - runVirtualTokens(config);
}

/**
 * The sequence lengths a row needs: `usable`, the shortest whose first tokens
 * hold a trained token (the loss counts labels from the second token on), and
 * `whole`, the shortest that keeps every trained token; null for a row with none.
 */
export function rowNeeds(labels: ArrayLike<number>): { usable: number; whole: number } | null {
  let first = -1;
  let last = -1;
  for (let t = 1; t < labels.length; t++) {
    if (labels[t] === IGNORE_INDEX) continue;
    if (first < 0) first = t;
    last = t;
  }
  return first < 0 ? null : { usable: first + 1, whole: last + 1 };
}

/** The sequence lengths every row needs (the largest of each need); null when no row has a trained token. */
export function rowsNeed(rows: readonly Pick<Example, 'labels'>[]): { usable: number; whole: number } | null {
  let usable = 0;
  let whole = 0;
  for (const row of rows) {
    const n = rowNeeds(row.labels);
    if (n === null) continue;
    usable = Math.max(usable, n.usable);
    whole = Math.max(whole, n.whole);
  }
  return usable === 0 ? null : { usable, whole };
}

/**
 * The rows the run would read without its sequence length cutting them (at the
 * model's longest, unpacked): null when they cannot be read either, so the
 * sequence length is not what refuses the data.
 */
async function rowsWithoutTheLimit(config: TrainConfig, folder: ModelFolder): Promise<Example[] | null> {
  const longest = longestSeqLen(config, folder);
  if (config.seqLen >= longest) return null;
  try {
    const { train, eval: evalRows } = await loadRunData({ ...config, seqLen: longest, pack: false }, await ModelTokenizer.load(folder.dir), folder);
    return [...train, ...evalRows];
  } catch {
    return null;
  }
}

/** The error of the data the run cannot use, on the field that changes it. */
async function dataError(config: TrainConfig, folder: ModelFolder, error: Error): Promise<FieldError> {
  // the evaluation file's errors say which of the run's files it is (training/eval-file.ts)
  const file = config.evalData !== null && error.message.startsWith('the evaluation file') ? config.evalData : config.data;
  const rows = await rowsWithoutTheLimit(config, folder);
  const need = rows ? rowsNeed(rows) : null;
  if (need === null) return { field: file === config.data ? 'data' : 'evalData', message: inAppWords(error.message, 'start') };
  const whole = need.whole > need.usable ? ` (${need.whole} keeps every answer whole)` : '';
  return {
    field: 'hyper.seqLen',
    // (rows the data cannot give for other reasons, the Data page lists: only the usable ones are said here)
    message: `Sequence length ${config.seqLen} leaves no row of ${file} a token to learn: in each of its ${countOf(rows!.length, 'usable row')} the first ${config.seqLen} tokens are prompt. ` +
      `Raise it to at least ${need.usable}, where every row keeps part of its answer${whole}.`,
  };
}

/** Each error runRows kept, as told (runRows throws the same one again while nothing changed: told once, not read again per edit). */
const told = new WeakMap<Error, FieldError>();

/** The run's rows, or why the run would refuse them (on the form's field that changes it). */
export async function readRunData(config: TrainConfig, folder: ModelFolder): Promise<RunDataRead> {
  try {
    return { rows: await runRows(config, folder), error: null };
  } catch (e) {
    if (!(e instanceof Error) || e instanceof TypeError || e instanceof ReferenceError) throw e;
    const error = told.get(e) ?? (await dataError(config, folder, e));
    told.set(e, error);
    return { rows: null, error };
  }
}
