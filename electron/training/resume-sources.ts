// A resumed run reads its model and data (and its evaluation file, if it has
// one) from where run.json says they were.
// When one of them has moved, "no such folder. Pick the folder..." does not
// tell a user that the run can continue: say where to put it back, or how to
// point the run at the new place (checked: see settings.ts resumedConfig).
import { existsSync } from 'node:fs';
import type { TrainConfig } from './config.js';
import type { FieldNamer } from './settings.js';
import { datasetPathExists } from '../data/containers/dataset-folder.js';

/** evalData -> --eval-data: the flags are the fields in kebab case */
const flagNames: FieldNamer = (field) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Why a resumed run cannot find its model or data, and what to do; null when both are there. */
export function resumeSourcesProblem(config: Pick<TrainConfig, 'model' | 'data' | 'modelFingerprint'> & Partial<Pick<TrainConfig, 'evalData'>>, name: FieldNamer = flagNames): string | null {
  const problems: string[] = [];
  if (!existsSync(config.model)) {
    const relocate = config.modelFingerprint
      ? `, or resume with ${name('model')} <its new folder> (checked: the same config.json, tensor names, dtypes and shapes, and tokenizer as when the run started)`
      : ' (this run recorded no fingerprint of its model, so it cannot be pointed at another folder)';
    problems.push(`${config.model}: the run's model folder is not there (no such folder). Put it back at ${config.model}${relocate}`);
  }
  if (!datasetPathExists(config.data)) {
    problems.push(`${config.data}: the run's data file is not there (no such file). Put it back at ${config.data}, or resume with ${name('data')} <its new path> ` +
      '(checked: the same sha256 as when the run started)');
  }
  if (config.evalData && !datasetPathExists(config.evalData)) {
    problems.push(`${config.evalData}: the run's evaluation file is not there (no such file). Put it back at ${config.evalData}, or resume with ${name('evalData')} <its new path> ` +
      '(checked: the same sha256 as when the run started)');
  }
  return problems.length > 0 ? problems.join('; ') : null;
}
