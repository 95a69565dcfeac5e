// Writing files and folders so that a reader never sees them half-written and
// a failure leaves the old content in place:
//   writeFileAtomic    temp file beside the target, fsync, rename over it;
//   writeFolderAtomic  temp folder beside the target, filled, renamed into place.
// Every model, adapter and export file of the app goes through these two, so
// their errors are where a failed write is put in the user's words: the path
// named is the one the file or folder will have (temp-names.ts intendedPath),
// never a temp, and a full disk says what the write needs and what is free.

import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { bytesToFree, bytesUnder, freeBytes, shortfallInWords, type DiskShortfall, type SpaceNeed } from './disk-space.js';
import { bytesInWords } from '../text/bytes.js';
import { makeFolder, refuseKernelPath } from './make-folder.js';
import { intendedPath, tempName, writeTag } from './temp-names.js';
import { clearWriteLeftovers, describeCleanup, type LeftoverCleanup } from './write-leftovers.js';

/** What most write failures ask of the user (kept-state.ts strips it from a message that says what to do instead). */
const CHECK_AND_RETRY = 'Check free disk space and permissions, then try again.';

/** A file or folder could not be written; the message names it, the cause and what to do. */
export class FileWriteError extends Error {
  /** the file-system error code (ENOSPC, EACCES...), or null */
  readonly code: string | null;
  /** a full disk (ENOSPC, EDQUOT): what the write needed and what is free, as far as known */
  readonly space: DiskShortfall | null;

  constructor(readonly file: string, readonly problem: string, readonly advice: string, more: { code?: string | null; space?: DiskShortfall | null } = {}) {
    super(`${file}: ${problem}. ${advice}`);
    this.name = 'FileWriteError';
    // (a caller's own FileWriteError says its code in the problem: "writing failed (ENOSPC: the disk is full)")
    this.code = more.code ?? /\(([A-Z][A-Z0-9_]+)[):]/.exec(problem)?.[1] ?? null;
    this.space = more.space ?? null;
  }
}

export class FolderExistsError extends Error {
  /** `howToOverwrite`: the caller's way to allow it (a CLI flag), when it has one. */
  constructor(readonly dir: string, howToOverwrite = 'remove it first') {
    super(`${dir}: the folder already exists and is not empty. Choose another folder, or ${howToOverwrite} to replace it.`);
    this.name = 'FolderExistsError';
  }
}

/** Codes that mean the disk (or the user's quota on it) cannot take the write. */
export function isOutOfSpace(code: string | null | undefined): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * The error of a failed write of `path` (as the user will see it: intendedPath),
 * for `doing` ("writing failed"), with `space` for a full disk. `what` names
 * the thing in the space words ("the file", "the folder").
 */
function writeError(path: string, doing: string, code: string, space: DiskShortfall | null, what: string, advice = CHECK_AND_RETRY): FileWriteError {
  const room = space === null ? null : shortfallInWords(space, what);
  const problem = `${doing} (${codeInWords(code)}${room === null ? '' : `; ${room}`})`;
  if (isOutOfSpace(code)) {
    const toFree = space === null ? null : bytesToFree(space);
    const much = toFree === null ? 'some space' : `at least ${bytesInWords(toFree)}`;
    advice = code === 'EDQUOT'
      ? `Free ${much} of your quota on that disk, or write to another disk, then try again.`
      : `Free ${much} on that disk, or write to another disk, then try again.`;
  }
  return new FileWriteError(path, problem, advice, { code, space });
}

/** For a full disk: `need` and the space free on the disk of `dir` now (statfs; a quota's room it cannot tell). */
async function shortfall(code: string, need: SpaceNeed | null, dir: string): Promise<DiskShortfall | null> {
  if (!isOutOfSpace(code)) return null;
  return { need, free: code === 'ENOSPC' ? await freeBytes(dir) : null };
}

/**
 * A raw file-system error of a write to a path within `folder` (a copy: its
 * destination) as a FileWriteError naming the path the user will see, with
 * the space a copy needed; any other error as it is.
 */
export async function asFileWriteError(err: unknown, folder: string): Promise<unknown> {
  if (err instanceof FileWriteError || !isFileSystemError(err)) return err;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  const path = e.dest ?? e.path;
  const within = resolve(folder);
  if (path === undefined || (resolve(path) !== within && !resolve(path).startsWith(within + sep))) return err;
  const copied = e.syscall === 'copyfile' && e.path !== undefined ? (await stat(e.path).catch(() => null))?.size ?? null : null;
  const need: SpaceNeed | null = copied === null ? null : { bytes: copied, bound: 'exact' };
  return writeError(intendedPath(path), 'writing failed', errorCode(e), await shortfall(errorCode(e), need, dirname(path)), 'the file');
}

/**
 * A FileWriteError of a full disk that did not say how much the write
 * needed (an append: metrics.jsonl), with `bytes` and what is free now; any
 * other error as it is.
 */
export async function withSpaceNeeded(err: unknown, bytes: number): Promise<unknown> {
  if (!(err instanceof FileWriteError) || !isOutOfSpace(err.code) || err.space !== null) return err;
  const doing = err.problem.replace(/\s*\(.*$/, '');
  return writeError(err.file, doing, err.code!, await shortfall(err.code!, { bytes, bound: 'exact' }, dirname(err.file)), 'it');
}

/**
 * Creates or replaces `file` atomically. `fill` receives either a handle to
 * write through, or the whole content as a string or bytes. On any error the
 * temp file is removed and `file` is left as it was; file-system errors come
 * back as FileWriteError, any other error from `fill` as it was thrown.
 * `bytes`: the size a handle's `fill` writes, for the message when the disk
 * cannot take it (without it: at least what was written when it failed).
 */
export async function writeFileAtomic(file: string, fill: string | Uint8Array | ((handle: FileHandle) => Promise<void>), options: { bytes?: number } = {}): Promise<void> {
  const temp = join(dirname(file), tempName(basename(file), writeTag(), 'tmp'));
  const shown = intendedPath(file);
  const size = options.bytes ?? (typeof fill === 'string' ? Buffer.byteLength(fill) : fill instanceof Uint8Array ? fill.byteLength : null);
  const planned: SpaceNeed | null = size === null ? null : { bytes: size, bound: 'exact' };
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
  } catch (err) {
    const code = errorCode(err);
    throw writeError(shown, `cannot create a file in ${intendedPath(dirname(file))}`, code, await shortfall(code, planned, dirname(file)), 'the file',
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
    // what a fill of unknown size had written when the disk ran out: the least it needs
    const written = isFileSystemError(err) && isOutOfSpace(errorCode(err)) && planned === null ? await bytesUnder(temp) : 0;
    await unlink(temp).catch(() => {});
    if (!isFileSystemError(err)) throw err;
    const code = errorCode(err);
    const need = planned ?? (written > 0 ? { bytes: written, bound: 'at least' as const } : null);
    throw writeError(shown, 'writing failed', code, await shortfall(code, need, dirname(file)), 'the file');
  }
  await syncDirectory(dirname(file));
}

/**
 * Runs `fill(tempDir)` and moves the result to `target`. With
 * `overwrite: true` an existing folder at `target` is replaced as a whole
 * (its other files are removed too); without it, only a missing or empty
 * folder may be there. A file-system error of `fill` writing into the temp
 * folder comes back as FileWriteError naming the path it was for; a full
 * disk names `target` and what the folder needs: about `bytes` (the caller's
 * plan of its files), else at least what it held plus what the failed write
 * needed.
 */
export async function writeFolderAtomic(
  target: string,
  fill: (tempDir: string) => Promise<void>,
  options: { overwrite?: boolean; howToOverwrite?: string; onCleanup?: (note: string) => void; bytes?: number } = {},
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
  const tag = writeTag();
  const temp = join(parent, tempName(basename(dir), tag, 'tmp'));
  await mkdir(temp);
  try {
    await fill(temp);
  } catch (err) {
    const held = isOutOfSpace((err as { code?: string } | null)?.code) ? await bytesUnder(temp) : 0;
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw await folderFillError(err, dir, temp, held, options.bytes);
  }
  try {
    await syncDirectory(temp);
    if (existing === 'missing') {
      await rename(temp, dir);
    } else {
      // Move the old folder aside first so a failure can put it back.
      const old = join(parent, tempName(basename(dir), tag, 'old'));
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

/**
 * What `fill` threw, in the user's words: a write into `temp` as FileWriteError
 * (asFileWriteError), and a full disk as the folder's (`dir`), with what it
 * needs: `planned`, or at least the `held` bytes plus what the failed write
 * needed (which its own error says).
 */
async function folderFillError(err: unknown, dir: string, temp: string, held: number, planned: number | undefined): Promise<unknown> {
  const failure = await asFileWriteError(err, temp);
  if (!(failure instanceof FileWriteError) || !isOutOfSpace(failure.code)) return failure;
  const measured = held + (failure.space?.need?.bytes ?? 0);
  const need: SpaceNeed | null = planned !== undefined && planned >= measured
    ? { bytes: planned, bound: 'about' }
    : measured > 0 ? { bytes: measured, bound: 'at least' } : null;
  return writeError(intendedPath(dir), 'writing failed', failure.code!, await shortfall(failure.code!, need, dirname(dir)), 'the folder');
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
  return codeInWords(errorCode(err));
}

function codeInWords(code: string): string {
  return CAUSES[code] ? `${code}: ${CAUSES[code]}` : code;
}
