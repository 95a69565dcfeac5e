// DIR/run.lock: one process trains in a run folder at a time. The lock holds
// the owner's identity; a lock whose owner is dead (SIGKILL, power cut) is
// stale and is taken over.
//
// Taking it is one atomic step: the identity is written to a temp file, which
// is then hard-linked to run.lock (link() fails with EEXIST when the lock is
// there), so no process ever sees a lock without its owner. A stale lock is
// taken over by renaming it away first, so that of two processes that both
// judged it stale only one removes it, and only the file it judged. A file
// system without hard links (FAT and exFAT drives, some network shares) gets
// the lock created in place and then written: a lock found empty is held for
// UNREADABLE_LOCK_GRACE_MS, which covers that gap. An owner is one process:
// its pid, host and start time together (two containers on a shared volume
// can both run as pid 1).
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { currentProcessIdentity, processState, type ProcessIdentity } from './process-alive.js';
import { LOCK_FILE, runPaths } from './layout.js';

/**
 * A lock with no readable owner (empty: written by an older version, which
 * created the file before writing it; or damaged) is taken to be held while it
 * is younger than this: its owner may be writing it right now.
 */
export const UNREADABLE_LOCK_GRACE_MS = 5000;

export class RunLockedError extends Error {
  /** `owner` null: the lock names no owner yet (just created by another process). */
  constructor(readonly dir: string, readonly owner: ProcessIdentity | null) {
    super(owner
      ? `${dir}: the run is being trained by process ${owner.pid}; wait for it to finish or cancel it (Ctrl-C in its terminal) before starting or resuming it here`
      : `${dir}: another process is starting or resuming this run right now (its ${LOCK_FILE} was just created); wait for it, or try again in a few seconds`);
    this.name = 'RunLockedError';
  }
}

function ownerOf(text: string): ProcessIdentity | null {
  try {
    const owner = JSON.parse(text) as ProcessIdentity;
    return typeof owner?.pid === 'number' ? owner : null;
  } catch {
    return null;
  }
}

export async function readLock(dir: string): Promise<ProcessIdentity | null> {
  try {
    return ownerOf(await readFile(runPaths(dir).lock, 'utf8'));
  } catch {
    return null; // missing: nobody holds it
  }
}

export class RunFolderWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFolderWriteError';
  }
}

/**
 * The lock is the first file a run writes: failing to create it means the
 * run folder cannot be written at all. Say so, naming the folder (not only
 * run.lock) and what to do.
 */
function lockWriteError(dir: string, file: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    EPERM: 'the folder is not writable: it is marked immutable (chattr +i), or its permissions or owner forbid it',
    EACCES: 'permission denied: the folder is not writable by you (its permissions or owner)',
    EROFS: 'it is on a read-only file system',
    ENOSPC: 'the disk is full',
    EDQUOT: 'your disk quota is used up',
    ENOENT: 'the folder does not exist (removed meanwhile?)',
    ENOTDIR: 'it is not a folder',
  };
  if (code === undefined || why[code] === undefined) return error instanceof Error ? error : new Error(String(error));
  return new RunFolderWriteError(`${dir}: cannot write the run folder (creating ${file} failed with ${code}: ${why[code]}). Choose another --out folder${code === 'ENOSPC' || code === 'EDQUOT' ? ', or free some space' : ', or fix the folder (its permissions or flags)'}`);
}

/** A temp name beside run.lock, of the form removeWriteLeftovers clears once its process is gone. */
function tempBeside(dir: string, what: string): string {
  return join(dir, `.${LOCK_FILE}.${what}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** The same process: pid, host and start time (a pid alone repeats across hosts and containers). */
function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.host === b.host && a.startTicks === b.startTicks;
}

/** link() errors of a file system that has no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** The file operations the lock uses (tests give a link() that fails as FAT's does: no such drive here). */
export interface LockFs {
  link: (existing: string, created: string) => Promise<void>;
}

/** Puts the written identity at `file`: a hard link (atomic), or where there are none, the file created in place and written. */
async function placeLock(temp: string, file: string, me: ProcessIdentity, fs: LockFs): Promise<void> {
  try {
    await fs.link(temp, file);
  } catch (e) {
    if (!NO_HARD_LINKS.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
    const h = await open(file, 'wx'); // EEXIST: held, as link's; EPERM of an immutable folder: as link's
    try {
      await h.writeFile(JSON.stringify(me) + '\n');
      await h.sync();
    } finally {
      await h.close();
    }
  }
}

/** Why the lock in the way of `link` cannot be taken over: its owner is alive, or it may be being written. Null: stale. */
async function heldBy(dir: string, file: string, me: ProcessIdentity): Promise<RunLockedError | null> {
  let text: string;
  let ageMs: number;
  try {
    text = await readFile(file, 'utf8');
    ageMs = Date.now() - (await stat(file)).mtimeMs;
  } catch {
    return null; // gone meanwhile: try again
  }
  const owner = ownerOf(text);
  if (owner === null) return ageMs < UNREADABLE_LOCK_GRACE_MS ? new RunLockedError(dir, null) : null;
  if (!sameProcess(owner, me) && processState(owner) !== 'dead') return new RunLockedError(dir, owner);
  return null;
}

/**
 * Removes a lock judged stale, unless another process replaced it meanwhile:
 * the lock is renamed away (one process wins that), read again, and put back
 * when it is no longer the stale one.
 */
async function removeStaleLock(dir: string, file: string, me: ProcessIdentity, fs: LockFs): Promise<void> {
  const aside = tempBeside(dir, 'stale');
  try {
    await rename(file, aside);
  } catch {
    return; // another process moved or removed it first
  }
  if ((await heldBy(dir, aside, me)) !== null) {
    // A live owner took it over between the check and the rename: give it back.
    try {
      await fs.link(aside, file);
    } catch (e) {
      if (NO_HARD_LINKS.has((e as NodeJS.ErrnoException).code ?? '')) {
        await rename(aside, file).catch(() => {});
        return;
      }
    }
  }
  await unlink(aside).catch(() => {});
}

/** Takes the lock of a run folder (which must exist); returns the release function. */
export async function acquireRunLock(dir: string, fs: LockFs = { link }): Promise<() => Promise<void>> {
  const file = runPaths(dir).lock;
  const me = currentProcessIdentity();
  const temp = tempBeside(dir, 'new');
  try {
    const h = await open(temp, 'wx');
    try {
      await h.writeFile(JSON.stringify(me) + '\n');
      await h.sync();
    } finally {
      await h.close();
    }
  } catch (e) {
    await unlink(temp).catch(() => {});
    throw lockWriteError(dir, file, e);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await placeLock(temp, file, me, fs);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw lockWriteError(dir, file, e);
        const held = await heldBy(dir, file, me);
        if (held) throw held;
        await removeStaleLock(dir, file, me, fs);
        continue;
      }
      return async () => {
        const owner = await readLock(dir);
        if (owner !== null && sameProcess(owner, me)) await unlink(file).catch(() => {});
      };
    }
  } finally {
    await unlink(temp).catch(() => {});
  }
  throw new Error(`${file}: cannot take the run lock (another process keeps creating it)`);
}
