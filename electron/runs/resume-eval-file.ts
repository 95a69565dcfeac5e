// A resumed run must evaluate on the file it started with: its eval losses
// before and after the resume are then one series. The file may have moved
// (`--resume RUN --eval-data NEW`): the new path is accepted when its sha256
// is the one run.json recorded, as a moved --data file is (execute.ts).
import { resolve } from 'node:path';
import type { TrainConfig } from '../training/config.js';
import type { RunRecord } from './run-record.js';

/** Why the resumed run's evaluation file is not the one it started with; null when it is (or the run has none). */
export function resumedEvalFileProblem(config: Pick<TrainConfig, 'evalData'>, existing: Pick<RunRecord, 'config' | 'eval_data_sha256'>, sha256: string | null): string | null {
  const file = config.evalData;
  if (!file || sha256 === null) return null;
  const started = existing.config.evalData ?? null;
  const recorded = existing.eval_data_sha256 ?? null;
  const moved = started === null || resolve(file) !== resolve(started);
  if (recorded === null) {
    // nothing to check a moved file against (the run stopped before it recorded one)
    return moved
      ? `--eval-data ${file}: this run's run.json records no sha256 of its evaluation file, so another file cannot be checked to be the same. ` +
        `Put the file back at ${started ?? file} and resume without --eval-data`
      : null;
  }
  if (recorded === sha256) return null;
  return moved
    ? `--eval-data ${file}: is not the evaluation file this run started with (${started}; the sha256 differs); a resumed run must evaluate on the same rows. ` +
      'Give the file it started with, or start a new run with another --out.'
    : `${file}: the evaluation file changed since the run started (its sha256 differs); a resumed run must evaluate on the same rows. ` +
      'Restore the file, or start a new run with another --out.';
}
