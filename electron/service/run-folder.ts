// Where a run goes when the form leaves "out" empty: a new folder under the
// studio home, <studio home>/runs/<YYYYMMDD-HHMMSS>-<method>, made unique
// with a -2, -3... suffix. reserveRunFolder creates it (empty), so two runs
// started in the same second never share one.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolder } from '../files/make-folder.js';
import { ensureStudioHome, studioHome } from '../runs/run-index.js';
import type { TrainMethod } from '../training/config.js';

export function runsRoot(): string {
  return join(studioHome(), 'runs');
}

const two = (n: number) => String(n).padStart(2, '0');

/** "20261128-215901-lora" (local time, as the user reads it). */
export function runFolderName(method: TrainMethod, at = new Date()): string {
  return `${at.getFullYear()}${two(at.getMonth() + 1)}${two(at.getDate())}-${two(at.getHours())}${two(at.getMinutes())}${two(at.getSeconds())}-${method}`;
}

/** The folder a new run would get now (not created). */
export function plannedRunFolder(method: TrainMethod, at = new Date()): string {
  const base = join(runsRoot(), runFolderName(method, at));
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

/** Creates a new, empty run folder and returns it. */
export async function reserveRunFolder(method: TrainMethod, at = new Date()): Promise<string> {
  await ensureStudioHome();
  await makeFolder(runsRoot());
  const base = join(runsRoot(), runFolderName(method, at));
  for (let i = 1; ; i++) {
    const dir = i === 1 ? base : `${base}-${i}`;
    try {
      await mkdir(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}
