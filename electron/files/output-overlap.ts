// An output folder must never be one of the command's own inputs, lie inside
// one, or hold one: writing it replaces the whole folder (writeFolderAtomic
// with overwrite removes what was there), so `merge --out RUN` would delete
// the adapter it merges and `export RUN --out PARENT` the run and its
// neighbours. Compared by real path, so a symlink cannot hide the overlap.
import { resolve } from 'node:path';
import { isWithin, realPathOfMaybeMissing } from './make-folder.js';

export interface NamedInput {
  /** what the folder is, for the message: "the model folder", "the adapter folder", "the run folder" */
  what: string;
  path: string;
}

export class OutputOverlapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputOverlapError';
  }
}

/**
 * Refuses `out` when it equals, contains or lies inside any of `inputs`.
 * `command` names what would write it ("merge", "the export"), `flag` how
 * the user gave it ("--out").
 */
export async function refuseOutputOverInputs(out: string, inputs: readonly NamedInput[], command: string, flag = '--out'): Promise<void> {
  const outAbs = resolve(out);
  const outReal = await realPathOfMaybeMissing(outAbs);
  for (const input of inputs) {
    const inAbs = resolve(input.path);
    const inReal = await realPathOfMaybeMissing(inAbs);
    let relation: string | null = null;
    if (outReal === inReal) relation = `is ${input.what} ${inAbs}`;
    else if (isWithin(outReal, inReal)) relation = `lies inside ${input.what} ${inAbs}`;
    else if (isWithin(inReal, outReal)) relation = `contains ${input.what} ${inAbs}`;
    if (relation === null) continue;
    const via = outReal === inReal && (outReal !== outAbs || inReal !== inAbs)
      ? ` (through a symbolic link: both are ${inReal})`
      : outReal !== outAbs || inReal !== inAbs ? ` (through a symbolic link: ${outReal} and ${inReal})` : '';
    throw new OutputOverlapError(
      `${flag} ${outAbs}: ${relation}${via}; ${command} replaces the whole ${flag} folder, so it would delete its own input. ` +
        `Choose a separate ${flag} folder that neither holds nor lies inside ${inAbs}`,
    );
  }
}
