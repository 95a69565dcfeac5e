// Checks on a run's --out folder before anything is written there: a run must
// never write into (or around) its base model, into a folder that holds
// other files, or over a finished run unless asked to; and the folder must be
// creatable, with one line that says what to do when it is not.
import { readdir, stat } from 'node:fs/promises';
import { isWithin as within, kernelFileSystemOf, KernelFolderError, makeFolder, realPathOfMaybeMissing } from '../files/make-folder.js';
import { LOCK_FILE, RUN_FILE } from './layout.js';
import { countOf } from '../text/plural.js';

export class OutFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutFolderError';
  }
}

function kernelOutError(out: string, prefix: string): OutFolderError {
  return new OutFolderError(`--out ${out}: is under ${prefix}, a kernel file system where no run folder can be made; choose a folder on a disk, e.g. ./runs/my-run`);
}

/**
 * Refuses an --out that would overwrite the base model or unrelated files:
 * the model folder itself, a folder inside it or around it, a folder under
 * /proc, /sys or /dev, a file, or a folder that is not empty and holds no run.json.
 */
export async function checkOutFolder(out: string, model: string, inputs: { data?: string; evalData?: string | null; initAdapter?: string | null } = {}): Promise<void> {
  const kernel = await kernelFileSystemOf(out);
  if (kernel !== null) throw kernelOutError(out, kernel);
  const outReal = await realPathOfMaybeMissing(out);
  const modelReal = await realPathOfMaybeMissing(model);
  if (within(outReal, modelReal) || within(modelReal, outReal)) {
    const how = outReal === modelReal ? 'is the model folder' : within(outReal, modelReal) ? `is inside the model folder ${model}` : `contains the model folder ${model}`;
    throw new OutFolderError(`--out ${out}: ${how}; the run would overwrite the base model's files. Choose a separate folder for the run, e.g. --out ./runs/my-run`);
  }
  // A run replaces what its folder held (--overwrite of a finished run, a fresh start of an
  // unfinished one): an input read from inside it would be deleted before it is read, or after.
  for (const [path, what, flag] of [[inputs.initAdapter, 'the adapter it starts from', '--init-adapter'], [inputs.data, 'its data file', '--data'], [inputs.evalData, 'its evaluation file', '--eval-data']] as const) {
    if (!path) continue;
    const inputReal = await realPathOfMaybeMissing(path);
    if (within(inputReal, outReal)) {
      throw new OutFolderError(`--out ${out}: holds ${what} (${flag} ${path}); the run replaces the files of its --out folder, so it would delete it. ` +
        `Copy it elsewhere first, or choose another --out folder`);
    }
    // a dataset folder is read whole: a run folder inside it would sit among its data files
    if (flag !== '--init-adapter' && outReal !== inputReal && within(outReal, inputReal) && (await stat(inputReal).catch(() => null))?.isDirectory()) {
      throw new OutFolderError(`--out ${out}: is inside the dataset folder ${flag} ${path}; the run's files would sit among the data. Choose a folder outside it, e.g. --out ./runs/my-run`);
    }
  }
  let entries: string[];
  try {
    const s = await stat(out);
    if (!s.isDirectory()) throw new OutFolderError(`--out ${out}: is a file, not a folder; choose a new folder name for the run`);
    entries = await readdir(out);
  } catch (e) {
    if (e instanceof OutFolderError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // created later
    throw outFolderFsError(out, e);
  }
  // a lock left by a run that died before writing run.json is no one's files
  const others = entries.filter((name) => name !== LOCK_FILE);
  if (others.length > 0 && !entries.includes(RUN_FILE)) {
    throw new OutFolderError(
      `--out ${out}: the folder is not empty (${countOf(others.length, 'item')}, e.g. ${others.slice(0, 3).join(', ')}) and holds no run.json, so it is not a run folder; ` +
        `the run would mix its files with these. Choose a new or empty folder for --out`,
    );
  }
}

/** One line for a file-system error on the --out folder: which folder, what went wrong, what to do. */
export function outFolderFsError(out: string, error: unknown): OutFolderError {
  const code = (error as NodeJS.ErrnoException).code;
  const path = (error as NodeJS.ErrnoException).path ?? out;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return new OutFolderError(`--out ${out}: permission denied on ${path}; choose a folder you can write to (e.g. under your home folder), or fix its permissions`);
    case 'ENOTDIR':
      return new OutFolderError(`--out ${out}: a part of the path is a file, not a folder (${path}); choose another --out`);
    case 'EEXIST':
      return new OutFolderError(`--out ${out}: ${path} exists and is not a folder; choose another --out`);
    case 'EROFS':
      return new OutFolderError(`--out ${out}: ${path} is on a read-only file system; choose a folder on a writable disk`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new OutFolderError(`--out ${out}: no space left on the disk of ${path}; free some space or choose a folder on another disk`);
    case 'ENAMETOOLONG':
      return new OutFolderError(`--out ${out}: the path is too long; choose a shorter one`);
    default:
      return new OutFolderError(`--out ${out}: cannot be used (${code ?? (error instanceof Error ? error.message : String(error))}); choose another folder`);
  }
}

/** Creates the run folder (and its parents), turning file-system errors into one line. */
export async function createOutFolder(out: string): Promise<void> {
  try {
    await makeFolder(out); // walks the path: no endless retry under /proc
  } catch (e) {
    if (e instanceof KernelFolderError) throw kernelOutError(out, e.prefix);
    throw outFolderFsError(out, e);
  }
}
