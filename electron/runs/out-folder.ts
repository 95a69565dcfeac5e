// Checks on a run's --out folder before anything is written there: a run must
// never write into (or around) its base model, into a folder that holds
// other files, or over a finished run unless asked to; and the folder must be
// creatable, with one line that says what to do when it is not.
import { mkdir, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { LOCK_FILE, RUN_FILE } from './layout.js';

/** Kernel file systems: Node's recursive mkdir under them can spin forever, and nothing may be written there anyway. */
const KERNEL_PREFIXES = ['/proc', '/sys'];

export class OutFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutFolderError';
  }
}

/** true when `inner` is `outer` or lies under it. */
function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

/** The real path of a path that may not exist yet: its nearest existing ancestor resolved, the rest appended. */
async function realPathOfMaybeMissing(path: string): Promise<string> {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail);
    } catch {
      const parent = dirname(head);
      if (parent === head) return resolve(path);
      tail.unshift(head.slice(parent.length).replace(/^[\\/]/, ''));
      head = parent;
    }
  }
}

/**
 * Refuses an --out that would overwrite the base model or unrelated files:
 * the model folder itself, a folder inside it or around it, a folder under
 * /proc or /sys, a file, or a folder that is not empty and holds no run.json.
 */
export async function checkOutFolder(out: string, model: string): Promise<void> {
  const outReal = await realPathOfMaybeMissing(out);
  for (const prefix of KERNEL_PREFIXES) {
    if (within(resolve(out), prefix) || within(outReal, prefix)) {
      throw new OutFolderError(`--out ${out}: is under ${prefix}, a kernel file system where no run folder can be made; choose a folder on a disk, e.g. ./runs/my-run`);
    }
  }
  const modelReal = await realPathOfMaybeMissing(model);
  if (within(outReal, modelReal) || within(modelReal, outReal)) {
    const how = outReal === modelReal ? 'is the model folder' : within(outReal, modelReal) ? `is inside the model folder ${model}` : `contains the model folder ${model}`;
    throw new OutFolderError(`--out ${out}: ${how}; the run would overwrite the base model's files. Choose a separate folder for the run, e.g. --out ./runs/my-run`);
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
      `--out ${out}: the folder is not empty (${others.length} item(s), e.g. ${others.slice(0, 3).join(', ')}) and holds no run.json, so it is not a run folder; ` +
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
  for (const prefix of KERNEL_PREFIXES) {
    if (within(resolve(out), prefix)) throw new OutFolderError(`--out ${out}: is under ${prefix}, a kernel file system where no run folder can be made; choose a folder on a disk, e.g. ./runs/my-run`);
  }
  try {
    await mkdir(out, { recursive: true });
  } catch (e) {
    throw outFolderFsError(out, e);
  }
}
