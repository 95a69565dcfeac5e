// A resumed run must see the data it started with, and evaluate on the rows it
// started with: its losses before and after the resume are then one series.
// Either may have moved (`--resume RUN --data NEW`, `--eval-data NEW`): the
// new path is accepted when its sha256 (a folder's: data/dataset-fingerprint.ts)
// is the one run.json recorded.
import { resolve } from 'node:path';

/** How the messages name one of a run's datasets. */
export interface DatasetWords {
  flag: string;
  /** "data file", "evaluation file" */
  noun: string;
  /** what to put back: "the data", "the file" */
  back: string;
  /** why: "see the same data", "evaluate on the same rows" */
  must: string;
}

export const DATA_WORDS: DatasetWords = { flag: '--data', noun: 'data file', back: 'the data', must: 'see the same data' };
export const EVAL_DATA_WORDS: DatasetWords = { flag: '--eval-data', noun: 'evaluation file', back: 'the file', must: 'evaluate on the same rows' };

/**
 * Why the dataset given to a resumed run is not the one it started with;
 * null when it is. `started`: the path run.json recorded (null: the run had
 * none); `recorded`: its sha256 there (null: not recorded); `sha256`: the
 * given path's now.
 */
export function resumedDatasetProblem(given: string, started: string | null, recorded: string | null, sha256: string, words: DatasetWords): string | null {
  const moved = started === null || resolve(given) !== resolve(started);
  if (recorded === null) {
    // nothing to check a moved dataset against (a run from before it was recorded, or stopped before)
    return moved
      ? `${words.flag} ${given}: this run's run.json records no sha256 of its ${words.noun}, so another file cannot be checked to be the same. ` +
        `Put ${words.back} back at ${started ?? given} and resume without ${words.flag}`
      : null;
  }
  if (recorded === sha256) return null;
  return moved
    ? `${words.flag} ${given}: is not the ${words.noun} this run started with (${started}; the sha256 differs); a resumed run must ${words.must}. ` +
      'Give the file it started with, or start a new run with another --out.'
    : `${given}: the ${words.noun} changed since the run started (its sha256 differs); a resumed run must ${words.must}. ` +
      'Restore the file, or start a new run with another --out.';
}
