// When a write of the run fails (the final adapter or model, or a checkpoint:
// a full disk, a folder made read-only), the trained weights must not go with
// the process. They are kept as an ordinary checkpoint, in the run folder when
// it still takes one, else in the studio home ($PEFT_STUDIO_HOME/kept/<run>,
// usually another disk than a run on an external one), and the message says
// where and the one command that finishes the job: `train --resume <run>`
// looks in both places (newestKeptCheckpoint) and, for a run whose steps were
// all done, only writes the final adapter or model.
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FileWriteError } from '../files/atomic.js';
import { makeFolder } from '../files/make-folder.js';
import { newestValidCheckpoint, type ResumePoint } from './checkpoint-read.js';
import { runPaths } from './layout.js';
import { studioHome } from './run-index.js';

/**
 * The studio-home folder (laid out like a run folder: checkpoints/step-N)
 * that keeps a run's state when its own folder cannot. Named by the run, not
 * by its path (`runKey`: run.json's created_at): the run folder may be moved
 * to a disk with room before the resume, and another run later put at the
 * same path must not take this one's state.
 */
export function keptStateDir(runKey: string): string {
  return join(studioHome(), 'kept', `run-${createHash('sha256').update(runKey).digest('hex').slice(0, 16)}`);
}

/** Writes the checkpoint into `runDir` (a run folder or keptStateDir); resolves with its folder. */
export type CheckpointWriter = (runDir: string) => Promise<string>;

/**
 * Keeps the state after a failed write: in the run folder first (unless
 * `runFolderFailed`: the failure was a checkpoint there), else in the studio
 * home. Resolves with the checkpoint folder, or null when neither took it.
 */
export async function keepState(runDir: string, runKey: string, write: CheckpointWriter, runFolderFailed: boolean): Promise<string | null> {
  if (!runFolderFailed) {
    try {
      return await write(runDir);
    } catch {
      // the run folder's disk or permissions: try the studio home
    }
  }
  try {
    const home = keptStateDir(runKey);
    await makeFolder(runPaths(home).checkpoints);
    return await write(home);
  } catch {
    return null;
  }
}

/**
 * The newest checkpoint of the run: the run folder's, or a newer one kept in
 * the studio home. `kept`: it is the studio home's.
 */
export async function newestKeptCheckpoint(runKey: string, inRun: ResumePoint): Promise<{ point: ResumePoint; kept: boolean }> {
  const home = await newestValidCheckpoint(keptStateDir(runKey)).catch(() => null);
  const own = inRun.checkpoint?.step ?? -1;
  if (home?.checkpoint && home.checkpoint.step > own) return { point: { checkpoint: home.checkpoint, rejected: inRun.rejected }, kept: true };
  return { point: inRun, kept: false };
}

/** Removes the studio-home copy once the run has its final adapter or model (or starts over). */
export async function dropKeptState(runKey: string): Promise<void> {
  await rm(keptStateDir(runKey), { recursive: true, force: true }).catch(() => {});
}

/** The failed write in words, without the generic "try again" (the caller says what to do). */
export function describeWriteError(error: unknown): string {
  if (error instanceof FileWriteError) return `${error.file}: ${error.problem}`;
  const text = error instanceof Error ? error.message : String(error);
  // a FileWriteError's text passed on by a caller: the same without its advice
  return text.replace(/\.?\s*Check free disk space and permissions, then try again\.?$/, '').replace(/\.$/, '');
}

/** What to fix before resuming, from the error's code (ENOSPC, EACCES, ...). */
export function writeErrorRemedy(error: unknown, runDir: string): string {
  const text = describeWriteError(error);
  if (/ENOSPC|EDQUOT/.test(text)) return `free space on the disk of ${runDir}`;
  if (/EACCES|EPERM|EROFS/.test(text)) return `make ${runDir} writable again`;
  return 'fix the cause above';
}
