// What killed writes leave beside their target: writeFileAtomic's and
// writeFolderAtomic's temp files and folders (".NAME.PID.HEX.tmp"), and the
// old folder writeFolderAtomic moves aside while it puts the new one in place
// (".NAME.PID.HEX.old"). A kill between those two renames leaves NAME missing
// and its old content in the ".old" folder. Only leftovers of a process that
// is gone are touched: a live one's are writes in progress. A pid alone does
// not say that: after a crash and a reboot the number may belong to another
// program (boot starts low pids again), and a multi-GB checkpoint temp would
// then stay forever. So a live pid whose process started after the leftover
// last changed (its ctime: the writer's own writes and renames set it) is
// not its writer (Linux: system/process-start.ts).
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { processStartMs } from '../system/process-start.js';
// (the names: temp-names.ts; NAME may itself be one, a temp of a temp)
import { parseTempName, type TempName } from './temp-names.js';

/**
 * Beyond the start time's error (hundredths of a second) and small clock adjustments: a writer started this much
 * after the leftover's change is another process. (A clock stepped forward by more than a live writer's age, between
 * its write and a cleanup by another process in the same folder, would be misread; the run lock keeps a second
 * writer out of a run folder.)
 */
const START_SLACK_MS = 1000;

/**
 * Is the writer of a leftover last changed at `changedMs` gone? This process's own writes and a pid that cannot be
 * checked count as alive; a live pid whose process started after the change is a later process with the number.
 */
export function writerGone(pid: number, changedMs: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const started = processStartMs(pid);
  return started !== null && started > changedMs + START_SLACK_MS;
}

export interface LeftoverCleanup {
  /** ".old" folders put back as their target (it was missing) */
  restored: { from: string; to: string }[];
  /** temp files and folders removed */
  removed: string[];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Clears the leftovers of dead writers in `dir` (only those for `target` when
 * given). An ".old" folder whose target is missing is put back in its place
 * (the newest one, when several are), every other leftover is removed.
 */
export async function clearWriteLeftovers(dir: string, target?: string): Promise<LeftoverCleanup> {
  const cleanup: LeftoverCleanup = { restored: [], removed: [] };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return cleanup;
  }
  const candidates = names
    .map((name) => ({ name, leftover: parseTempName(name) }))
    .filter((e): e is { name: string; leftover: TempName } => e.leftover !== null && (target === undefined || e.leftover.target === target));
  const dead: typeof candidates = [];
  for (const e of candidates) {
    const changed = (await stat(join(dir, e.name)).catch(() => null))?.ctimeMs;
    if (changed !== undefined && writerGone(e.leftover.pid, changed)) dead.push(e);
  }
  // ".old" first, newest first: one of them may have to take its target's place before the rest go
  const olds = await Promise.all(dead.filter((e) => e.leftover.kind === 'old').map(async (e) => ({ ...e, mtime: (await stat(join(dir, e.name)).catch(() => null))?.mtimeMs ?? 0 })));
  olds.sort((a, b) => b.mtime - a.mtime);
  for (const { name, leftover } of olds) {
    const to = join(dir, leftover.target);
    if (!(await exists(to))) {
      await rename(join(dir, name), to);
      cleanup.restored.push({ from: join(dir, name), to });
    }
  }
  for (const { name } of dead) {
    const path = join(dir, name);
    if (cleanup.restored.some((r) => r.from === path)) continue;
    await rm(path, { recursive: true, force: true });
    cleanup.removed.push(path);
  }
  return cleanup;
}

/** The cleanup in one line for the user (null: nothing was there). */
export function describeCleanup(cleanup: LeftoverCleanup): string | null {
  const parts = [
    ...cleanup.restored.map((r) => `put ${r.to} back from ${r.from} (a write killed while replacing it had moved it aside)`),
    ...(cleanup.removed.length > 0 ? [`removed what killed writes left: ${cleanup.removed.join(', ')}`] : []),
  ];
  return parts.length > 0 ? parts.join('; ') : null;
}
