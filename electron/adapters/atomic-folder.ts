// Creates a folder atomically: its files are written into a temporary folder
// beside the target, which is then renamed into place. A reader never sees a
// half-written export, and a failed export leaves nothing behind. An existing
// non-empty folder is only replaced when the caller says so.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { syncDirectory } from '../safetensors/write.js';

export class FolderExistsError extends Error {
  constructor(readonly dir: string) {
    super(`${dir}: the folder already exists and is not empty. Choose another folder, or allow overwriting to replace it.`);
    this.name = 'FolderExistsError';
  }
}

/**
 * Runs `fill(tempDir)` and moves the result to `target`. With
 * `overwrite: true` an existing folder at `target` is replaced as a whole
 * (its other files are removed too); without it, only a missing or empty
 * folder may be there.
 */
export async function writeFolderAtomic(target: string, fill: (tempDir: string) => Promise<void>, options: { overwrite?: boolean } = {}): Promise<void> {
  const dir = resolve(target);
  const parent = dirname(dir);
  const existing = await folderState(dir);
  if (existing === 'file') throw new Error(`${dir}: is a file; choose a folder path for the export.`);
  if (existing === 'non-empty' && !options.overwrite) throw new FolderExistsError(dir);

  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
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
}

/** Writes a file and fsyncs it (inside a folder that is renamed afterwards). */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
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
