import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileWriteError, writeFileAtomic } from './atomic.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates and replaces a file from a string, bytes or a handle, leaving no temp file', async () => {
    const file = join(dir, 'a.json');
    await writeFileAtomic(file, '{"x": 1}\n');
    expect(await readFile(file, 'utf8')).toBe('{"x": 1}\n');
    await writeFileAtomic(file, new Uint8Array([0x68, 0x69]));
    expect(await readFile(file, 'utf8')).toBe('hi');
    await writeFileAtomic(file, async (handle) => {
      await handle.write('via ');
      await handle.write('handle');
    });
    expect(await readFile(file, 'utf8')).toBe('via handle');
    expect(await readdir(dir)).toEqual(['a.json']);
  });

  it('leaves the old file in place when filling fails, and passes the error through', async () => {
    const file = join(dir, 'keep.txt');
    await writeFile(file, 'old');
    const boom = new Error('boom');
    await expect(writeFileAtomic(file, async () => { throw boom; })).rejects.toBe(boom);
    expect(await readFile(file, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('names the file and what to do when the folder does not exist', async () => {
    const file = join(dir, 'missing', 'x.txt');
    const err = await writeFileAtomic(file, 'x').catch((e) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err.message).toMatch(/missing\/x\.txt: cannot create a file in .*missing \(ENOENT\)\. Check that the folder exists and is writable/);
  });
});
