// DIR/run.lock: one process trains in a run folder at a time. The lock holds
// the owner's identity; a lock whose owner is dead (SIGKILL, power cut) is
// stale and is taken over.
import { open, readFile, unlink } from 'node:fs/promises';
import { currentProcessIdentity, processState, type ProcessIdentity } from './process-alive.js';
import { runPaths } from './layout.js';

export class RunLockedError extends Error {
  constructor(readonly dir: string, readonly owner: ProcessIdentity) {
    super(`${dir}: the run is being trained by process ${owner.pid}; wait for it to finish or cancel it (Ctrl-C in its terminal) before starting or resuming it here`);
    this.name = 'RunLockedError';
  }
}

export async function readLock(dir: string): Promise<ProcessIdentity | null> {
  try {
    const owner = JSON.parse(await readFile(runPaths(dir).lock, 'utf8')) as ProcessIdentity;
    return typeof owner.pid === 'number' ? owner : null;
  } catch {
    return null; // missing, or torn by a crash while being written: nobody holds it
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

/** Takes the lock of a run folder (which must exist); returns the release function. */
export async function acquireRunLock(dir: string): Promise<() => Promise<void>> {
  const file = runPaths(dir).lock;
  const me = currentProcessIdentity();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await open(file, 'wx');
      try {
        await h.writeFile(JSON.stringify(me) + '\n');
        await h.sync();
      } finally {
        await h.close();
      }
      return async () => {
        const owner = await readLock(dir);
        if (owner?.pid === me.pid) await unlink(file).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw lockWriteError(dir, file, e);
      const owner = await readLock(dir);
      if (owner && owner.pid !== me.pid && processState(owner) !== 'dead') throw new RunLockedError(dir, owner);
      await unlink(file).catch(() => {}); // stale: its owner is gone
    }
  }
  throw new Error(`${file}: cannot take the run lock (another process keeps creating it)`);
}
