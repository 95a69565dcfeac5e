// An export onto a disk that cannot take it, every format the brief of the
// robustness review found naming temp folders: the error names --out, says
// the disk is full, what the export needs at least (between the largest file
// and the whole of what a reference export to a roomy disk wrote) and what is
// free (as df reports it); nothing is left on the disk. The disk is a real
// small tmpfs (root only; skipped elsewhere).
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { bytesFromWords, canMountSmallDisk, dfAvailable, mountSmallDisk, type SmallDisk } from '../testing/small-disk.js';
import { openModelFolder } from '../models/folder.js';
import { Prng } from '../random/prng.js';
import { exportAdapter, ExportError, type ExportFormat } from './export.js';

const DEMO = resolve('resources/demo/model');
const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));

/** Bytes of every file under `dir`, by path relative to it. */
function filesUnder(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const info = statSync(join(dir, name));
    if (info.isFile()) sizes.set(name, info.size);
  }
  return sizes;
}

describe.skipIf(!canMountSmallDisk)('export onto a full disk (a real tmpfs)', () => {
  let adapter: string;
  let disk: SmallDisk | null = null;
  beforeAll(async () => {
    const folder = await openModelFolder(DEMO);
    adapter = join(tempDir('full-export-adapter'), 'adapter');
    const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    const rng = new Prng(5);
    const tensors = loraTensorShapes(folder.spec, lora).map(({ name, shape }) => ({ name, shape, data: Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.1) }));
    await writePeftAdapter({ dir: adapter, spec: folder.spec, lora, baseModelNameOrPath: DEMO, tensors });
  });
  afterEach(() => {
    disk?.unmount();
    disk = null;
  });

  // peft: the adapter file does not fit in 32 KiB; merged and gguf-model: the merged weights (3.6 MiB) not in 1 MiB
  const cases: [ExportFormat, number, string][] = [['peft', 32, 'adapter_model.safetensors'], ['merged', 1024, 'model.safetensors'], ['gguf-model', 1024, 'model.safetensors']];
  for (const [format, kib, largest] of cases) {
    it(`${format}: names --out and says what the export needs and what is free`, { timeout: 120_000 }, async () => {
      // what the export writes, on a disk with room: merged (gguf-model writes that model first, in its scratch folder)
      const reference = join(tempDir('full-export-ref'), 'out');
      await exportAdapter({ source: adapter, formats: [format === 'gguf-model' ? 'merged' : format], out: reference, threads: 2 });
      const written = filesUnder(reference);
      const total = [...written.values()].reduce((a, b) => a + b, 0);

      disk = mountSmallDisk(kib);
      const out = join(disk.dir, 'e');
      const err = await exportAdapter({ source: adapter, formats: [format], out, threads: 2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExportError);
      const message = (err as Error).message;
      expect(message).not.toMatch(/\.tmp|gguf-model-work|merged\//);
      const m = new RegExp(`^${out}: cannot write the export folder: the disk is full \\(ENOSPC\\): the export needs at least (\\S+ \\S+), and (\\S+ \\S+) is free there\\. ` +
        `Free at least (\\S+ \\S+), or choose an --out folder on another disk\\.$`).exec(message);
      expect(m, message).not.toBeNull();
      const [need, free, toFree] = [m![1], m![2], m![3]].map(bytesFromWords);
      expect(need.bytes + need.within).toBeGreaterThanOrEqual(written.get(largest)!);
      expect(need.bytes - need.within).toBeLessThanOrEqual(total);
      expect(Math.abs(free.bytes - dfAvailable(disk.dir))).toBeLessThanOrEqual(free.within);
      expect(Math.abs(toFree.bytes - (need.bytes - free.bytes))).toBeLessThanOrEqual(toFree.within + need.within + free.within);
      expect(readdirSync(disk.dir)).toEqual([]);
    });
  }
});
