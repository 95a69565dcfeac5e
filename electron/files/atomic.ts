// Writing files and folders so that a reader never sees them half-written and
// a failure leaves the old content in place:
//   writeFileAtomic    temp file beside the target, fsync, rename over it;
//   writeFolderAtomic  temp folder beside the target, filled, renamed into place.
// Every model, adapter and export file of the app goes through these two.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { makeFolder, refuseKernelPath } from './make-folder.js';
import { clearWriteLeftovers, describeCleanup, type LeftoverCleanup } from './write-leftovers.js';

/** A file could not be written; the message names the file, the cause and what to do. */
export class FileWriteError extends Error {
  constructor(readonly file: string, readonly problem: string, readonly advice: string) {
    super(`${file}: ${problem}. ${advice}`);
    this.name = 'FileWriteError';
  }
}

export class FolderExistsError extends Error {
  /** `howToOverwrite`: the caller's way to allow it (a CLI flag), when it has one. */
  constructor(readonly dir: string, howToOverwrite = 'remove it first') {
    super(`${dir}: the folder already exists and is not empty. Choose another folder, or ${howToOverwrite} to replace it.`);
    this.name = 'FolderExistsError';
  }
}

/**
 * Creates or replaces `file` atomically. `fill` receives either a handle to
 * write through, or the whole content as a string or bytes. On any error the
 * temp file is removed and `file` is left as it was; file-system errors come
 * back as FileWriteError, any other error from `fill` as it was thrown.
 */
export async function writeFileAtomic(file: string, fill: string | Uint8Array | ((handle: FileHandle) => Promise<void>)): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${uniqueTag()}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
  } catch (err) {
    throw new FileWriteError(file, `cannot create a file in ${dirname(file)} (${codeAndCause(err)})`,
      'Check that the folder exists and is writable, and that the disk is not full.');
  }
  try {
    if (typeof fill === 'function') await fill(handle);
    else await handle.writeFile(fill);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, file);
  } catch (err) {
    if (handle) await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    if (!isFileSystemError(err)) throw err;
    throw new FileWriteError(file, `writing failed (${codeAndCause(err)})`, 'Check free disk space and permissions, then try again.');
  }
  await syncDirectory(dirname(file));
}

/**
 * Runs `fill(tempDir)` and moves the result to `target`. With
 * `overwrite: true` an existing folder at `target` is replaced as a whole
 * (its other files are removed too); without it, only a missing or empty
 * folder may be there.
 */
export async function writeFolderAtomic(
  target: string,
  fill: (tempDir: string) => Promise<void>,
  options: { overwrite?: boolean; howToOverwrite?: string; onCleanup?: (note: string) => void } = {},
): Promise<LeftoverCleanup> {
  const dir = resolve(target);
  const parent = dirname(dir);
  await refuseKernelPath(dir); // before any mkdir: Node's would spin forever under /proc
  // An earlier write of this folder that was killed: its temp folders go, and an old folder it had moved
  // aside comes back when the target is missing (a kill between the two renames below), before it is judged.
  const cleanup = await clearWriteLeftovers(parent, basename(dir));
  const note = describeCleanup(cleanup);
  if (note !== null) options.onCleanup?.(note);
  const existing = await folderState(dir);
  if (existing === 'file') throw new Error(`${dir}: is a file; choose a folder path.`);
  if (existing === 'non-empty' && !options.overwrite) throw new FolderExistsError(dir, options.howToOverwrite);

  await makeFolder(parent);
  const tag = uniqueTag();
  const temp = join(parent, `.${basename(dir)}.${tag}.tmp`);
  await mkdir(temp);
  try {
    await fill(temp);
    await syncDirectory(temp);
    if (existing === 'missing') {
      await rename(temp, dir);
    } else {
      // Move the old folder aside first so a failure can put it back.
      const old = join(parent, `.${basename(dir)}.${tag}.old`);
      await rename(dir, old);
      try {
        await rename(temp, dir);
      } catch (err) {
        await rename(old, dir).catch(() => {});
        throw err;
      }
      await rm(old, { recursive: true, force: true });
    }
    await syncDirectory(parent);
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
  return cleanup;
}

/** Makes a rename durable (best effort: not every platform can fsync a folder). */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Windows cannot open folders for fsync; the rename is still atomic.
  }
}

async function folderState(dir: string): Promise<'missing' | 'empty' | 'non-empty' | 'file'> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  if (!info.isDirectory()) return 'file';
  return (await readdir(dir)).length === 0 ? 'empty' : 'non-empty';
}

/** Unique among concurrent writers: the process id plus random bits. */
function uniqueTag(): string {
  return `${process.pid}.${randomBytes(4).toString('hex')}`;
}

function isFileSystemError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException | null)?.code === 'string';
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The causes a user can act on, in words (the code alone, ENOSPC, says little to most). */
const CAUSES: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted (permissions, or an immutable flag)',
};

/** "ENOSPC: the disk is full", or the code alone when it has no words here. */
export function codeAndCause(err: unknown): string {
  const code = errorCode(err);
  return CAUSES[code] ? `${code}: ${CAUSES[code]}` : code;
}
