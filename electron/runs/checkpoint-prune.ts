// Keeping the newest K complete checkpoints, and clearing what killed writes
// leave behind (temp folders and files named ".<name>.<pid>.<random>.tmp|.old").
import { rm } from 'node:fs/promises';
import { clearWriteLeftovers } from '../files/write-leftovers.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { COMPLETE_MARKER } from './checkpoint-format.js';
import { listCheckpoints } from './checkpoint-read.js';
import { runPaths } from './layout.js';

/**
 * Removes every checkpoint folder older than the `keep` newest complete ones
 * (incomplete ones among the old are removed too; 0 keeps all). Only the
 * marker's presence is checked here: the full check is resume's job.
 */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<number[]> {
  if (keep <= 0) return [];
  const all = await listCheckpoints(runDir);
  const complete = all.filter((c) => existsSync(join(c.dir, COMPLETE_MARKER)));
  if (complete.length <= keep) return [];
  const oldestKept = complete[keep - 1].step;
  const removed: number[] = [];
  for (const c of all) {
    if (c.step < oldestKept) {
      await rm(c.dir, { recursive: true, force: true });
      removed.push(c.step);
    }
  }
  return removed;
}

/**
 * Temp files and folders of writes a kill interrupted, in the run folder and checkpoints/ (files/write-leftovers.ts:
 * only a dead writer's; an old folder a kill left moved aside goes back in place when its target is missing).
 */
export async function removeWriteLeftovers(runDir: string): Promise<string[]> {
  const paths = runPaths(runDir);
  const removed: string[] = [];
  for (const dir of [paths.dir, paths.checkpoints]) removed.push(...(await clearWriteLeftovers(dir)).removed);
  return removed;
}
