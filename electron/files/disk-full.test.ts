// A write the disk cannot take: the error names the path the user will see
// (never a temp beside it, nor a temp of a temp), keeps its FileWriteError
// identity through the safetensors writer, and says what the write needs and
// what is free. The disk is a real tmpfs of a few KiB (root only; skipped
// elsewhere); the sizes expected are the serialized bytes, the free space
// what df reports.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serializeSafetensors, writeSafetensors } from '../safetensors/write.js';
import { FileWriteError, writeFileAtomic, writeFolderAtomic } from './atomic.js';
import { bytesFromWords, canMountSmallDisk, dfAvailable, mountSmallDisk, type SmallDisk } from '../testing/small-disk.js';
import { intendedPath } from './temp-names.js';

describe('intendedPath', () => {
  it('maps every temp part of a path, a temp of a temp too, back to the name it will take', () => {
    expect(intendedPath('/d/..epeft.3462.b2d7f4ca.tmp.3462.dad4ea4f.tmp/adapter_model.safetensors')).toBe('/d/epeft/adapter_model.safetensors');
    expect(intendedPath('/d/.e.3166.0a1b2c3d.tmp/.gguf-model-work/.merged.3166.99aa00ff.tmp/model.safetensors')).toBe('/d/e/.gguf-model-work/merged/model.safetensors');
    expect(intendedPath('/r/checkpoints/.step-15.789.d5af27dc.tmp/README.md')).toBe('/r/checkpoints/step-15/README.md');
    expect(intendedPath('/r/.adapter_model.safetensors.12.00ff00ff.tmp')).toBe('/r/adapter_model.safetensors');
  });

  it('leaves other dotted names, and an old folder moved aside, as they are', () => {
    for (const p of ['/home/u/.config/x.tmp', '/d/.e.12.zz.tmp/f', '/d/.e.12.abcd.old', 'rel/.hidden.1.tmp']) expect(intendedPath(p)).toBe(p);
  });
});

describe.skipIf(!canMountSmallDisk)('a full disk (a real 32 KiB tmpfs)', () => {
  let disk: SmallDisk | null = null;
  afterEach(() => {
    disk?.unmount();
    disk = null;
  });
  const tensors = { w: { dtype: 'F32' as const, shape: [16384], data: new Float32Array(16384).fill(0.5) } }; // 64 KiB of data
  const fileBytes = serializeSafetensors(tensors, { format: 'pt' }).length;
  /** "needs [about |at least ]X, and Y is free there" from a message. */
  const figures = (message: string) => {
    const m = / needs (about |at least )?(\S+ \S+), and (\S+ \S+) is free there/.exec(message);
    expect(m, message).not.toBeNull();
    return { bound: (m![1] ?? '').trim(), need: bytesFromWords(m![2]), free: bytesFromWords(m![3]) };
  };

  it('a safetensors file: a FileWriteError naming the file, its exact size and the space free', async () => {
    disk = mountSmallDisk(32);
    const file = join(disk.dir, 'model.safetensors');
    const err = await writeSafetensors(file, tensors, { format: 'pt' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    const e = err as FileWriteError;
    expect(e.file).toBe(file);
    expect(e.code).toBe('ENOSPC');
    expect(e.message).toMatch(new RegExp(`^${file}: writing failed \\(ENOSPC: the disk is full; the file needs \\S+ KiB, and \\S+ KiB is free there\\)\\. Free at least \\S+ KiB on that disk, or write to another disk, then try again\\.$`));
    const f = figures(e.message);
    expect(f.bound).toBe('');
    expect(Math.abs(f.need.bytes - fileBytes)).toBeLessThanOrEqual(f.need.within);
    expect(Math.abs(f.free.bytes - dfAvailable(disk.dir))).toBeLessThanOrEqual(f.free.within);
    expect(readdirSync(disk.dir)).toEqual([]); // the temp file is gone
  });

  it('a folder written over another write\'s temp folder (as an export writes an adapter folder): the error names the folder the user chose', async () => {
    disk = mountSmallDisk(32);
    const out = join(disk.dir, 'export');
    const err = await writeFolderAtomic(out, async (temp) => {
      await writeFileAtomic(join(temp, 'notes.txt'), 'x'.repeat(6000)); // fits: 2 pages
      await writeFolderAtomic(temp, async (inner) => {
        await writeFileAtomic(join(inner, 'adapter_config.json'), '{}\n');
        await writeSafetensors(join(inner, 'adapter_model.safetensors'), tensors, { format: 'pt' });
      }, { overwrite: true });
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    const e = err as FileWriteError;
    expect(e.file).toBe(out);
    expect(e.message).not.toContain('.tmp');
    expect(e.message).toMatch(new RegExp(`^${out}: writing failed \\(ENOSPC: the disk is full; the folder needs at least `));
    // at least what it held (6000 + 3 bytes) and the file that did not fit; no more than all it would have held
    const f = figures(e.message);
    expect(f.bound).toBe('at least');
    expect(Math.abs(f.need.bytes - (6000 + 3 + fileBytes))).toBeLessThanOrEqual(f.need.within);
    expect(Math.abs(f.free.bytes - dfAvailable(disk.dir))).toBeLessThanOrEqual(f.free.within);
    expect(readdirSync(disk.dir)).toEqual([]);
  });

  it('a folder with a plan of its size (a checkpoint): about that much', async () => {
    disk = mountSmallDisk(32);
    const target = join(disk.dir, 'step-1');
    const planned = 3 * fileBytes;
    const err = await writeFolderAtomic(target, async (temp) => {
      await writeSafetensors(join(temp, 'a.safetensors'), tensors, { format: 'pt' });
    }, { bytes: planned }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    const f = figures((err as FileWriteError).message);
    expect((err as FileWriteError).file).toBe(target);
    expect(f.bound).toBe('about');
    expect(Math.abs(f.need.bytes - planned)).toBeLessThanOrEqual(f.need.within);
  });
});
