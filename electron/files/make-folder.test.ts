// Folder creation under kernel file systems: Node 20's recursive mkdir spins
// forever on a missing /proc path; makeFolder, writeFolderAtomic and the
// studio home must fail at once with one line. Every test here runs against
// the real /proc of the machine (Linux), under a 5 s limit: a hang fails it.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFolderAtomic } from './atomic.js';
import { kernelFileSystemOf, KernelFolderError, makeFolder } from './make-folder.js';
import { ensureStudioHome, recordInIndex } from '../runs/run-index.js';
import { createOutFolder } from '../runs/out-folder.js';
import { cli } from '../testing/e2e-fixtures.js';

const linux = process.platform === 'linux' && existsSync('/proc/self');
const FAST_MS = 5000;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'make-folder-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `f`, returning its rejection and how long it took. */
async function rejection(f: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const t0 = performance.now();
  try {
    await f();
  } catch (error) {
    return { error: error as Error, ms: performance.now() - t0 };
  }
  throw new Error('expected a rejection');
}

describe('makeFolder', () => {
  it('creates every missing part of a path, and accepts one that exists', async () => {
    const target = join(dir, 'a', 'b', 'c');
    await makeFolder(target);
    expect((await stat(target)).isDirectory()).toBe(true);
    await makeFolder(target); // exists: fine
  });

  it('gives the file-system error of the part that failed (a file on the way: ENOTDIR)', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const { error } = await rejection(() => makeFolder(join(dir, 'file', 'sub')));
    expect((error as NodeJS.ErrnoException).code).toBe('ENOTDIR');
  });

  it.runIf(linux)('refuses /proc, /sys and /dev at once, naming who gave the path', { timeout: FAST_MS }, async () => {
    for (const path of ['/proc/peft-studio-no-such/a/b', '/sys/peft-studio-no-such/a', '/dev/peft-studio-no-such/a']) {
      const { error, ms } = await rejection(() => makeFolder(path, '--out'));
      expect(error).toBeInstanceOf(KernelFolderError);
      expect(error.message).toMatch(new RegExp(`^--out ${path}: is under /(proc|sys|dev), a kernel file system`));
      expect(ms).toBeLessThan(1000);
    }
    expect(existsSync('/dev/peft-studio-no-such')).toBe(false);
    expect(await kernelFileSystemOf('/dev/shm/x')).toBeNull(); // a RAM disk, not a kernel file system
  });

  it.runIf(linux)('sees through a symbolic link into /proc', { timeout: FAST_MS }, async () => {
    await symlink('/proc', join(dir, 'to-proc'));
    const { error } = await rejection(() => makeFolder(join(dir, 'to-proc', 'x', 'y')));
    expect(error).toBeInstanceOf(KernelFolderError);
    expect((error as KernelFolderError).prefix).toBe('/proc');
  });
});

describe.runIf(linux)('users of makeFolder fail fast under /proc', () => {
  it('writeFolderAtomic (export, merge, checkpoints) refuses before filling anything', { timeout: FAST_MS }, async () => {
    let filled = false;
    const { error, ms } = await rejection(() => writeFolderAtomic('/proc/peft-studio-no-such/out', async () => { filled = true; }));
    expect(error.message).toContain('/proc/peft-studio-no-such/out: is under /proc');
    expect(filled).toBe(false);
    expect(ms).toBeLessThan(1000);
  });

  it('the run index: PEFT_STUDIO_HOME=/proc/... is refused with a message naming PEFT_STUDIO_HOME', { timeout: FAST_MS }, async () => {
    const saved = process.env.PEFT_STUDIO_HOME;
    process.env.PEFT_STUDIO_HOME = '/proc/xx';
    try {
      // what the trainer calls on every status change (it spun forever in Node's mkdir)
      const record = { config: { model: 'm', method: 'lora' }, status: 'running', pid: null } as Parameters<typeof recordInIndex>[1];
      const viaIndex = await rejection(() => recordInIndex(join(dir, 'run'), record));
      expect(viaIndex.error.message).toMatch(/^PEFT_STUDIO_HOME=\/proc\/xx \(\/proc\/xx\): is under \/proc, a kernel file system where the run index \(runs\.json\) cannot be kept; set PEFT_STUDIO_HOME to a folder/);
      const { error } = await rejection(() => ensureStudioHome());
      expect(error.message).toBe(viaIndex.error.message);
      // train checks it before starting the training process (which would record the run there)
      const train = await cli(['train', '--model', join(dir, 'm'), '--data', join(dir, 'd.jsonl'), '--out', join(dir, 'run')]);
      expect(train.code).toBe(1);
      expect(train.stderr).toMatch(/^peft-studio: PEFT_STUDIO_HOME=\/proc\/xx \(\/proc\/xx\): is under \/proc/);
    } finally {
      if (saved === undefined) delete process.env.PEFT_STUDIO_HOME;
      else process.env.PEFT_STUDIO_HOME = saved;
    }
  });

  it('demo --out /proc/...: refused at once, naming --out', { timeout: FAST_MS }, async () => {
    const r = await cli(['demo', '--out', '/proc/peft-studio-no-such/demo', '--threads', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--out /proc/peft-studio-no-such/demo: is under /proc, a kernel file system');
  });

  it('a run folder under /dev is refused like one under /proc', { timeout: FAST_MS }, async () => {
    const { error } = await rejection(() => createOutFolder('/dev/peft-studio-no-such/run'));
    expect(error.message).toBe('--out /dev/peft-studio-no-such/run: is under /dev, a kernel file system where no run folder can be made; choose a folder on a disk, e.g. ./runs/my-run');
    expect(existsSync('/dev/peft-studio-no-such')).toBe(false);
  });
});
