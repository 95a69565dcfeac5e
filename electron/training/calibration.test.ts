// The GEMM calibration: measured through the real addon, kept per CPU, thread
// count and shape, and a broken cache file is measured over, not an error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../engine/load.js';
import type { NativeOps } from '../engine/native.js';
import { cpuBudget } from '../system/machine.js';
import { calibrate, calibrationShape } from './calibration.js';

const dir = mkdtempSync(join(tmpdir(), 'ps-calibration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** the real GEMM, counting its calls */
function countingOps(): { ops: Pick<NativeOps, 'gemm'>; calls: () => number } {
  const real = loadAddon().ops;
  let n = 0;
  return { ops: { gemm: (...args: Parameters<NativeOps['gemm']>) => { n++; real.gemm(...args); } }, calls: () => n };
}

const shape = { M: 64, N: 96, K: 64 };

describe('calibrate', () => {
  it('measures once, then reads the cache for the same CPU, threads and shape', () => {
    const file = join(dir, 'a', 'calibration.json');
    const { ops, calls } = countingOps();
    const first = calibrate(ops, 'cpu-x', 1, shape, file);
    expect(first.measured).toBe(true);
    expect(first.gflops).toBeGreaterThan(0);
    expect(calls()).toBe(4); // a warm-up and three timed products
    const second = calibrate(ops, 'cpu-x', 1, shape, file);
    expect(second.measured).toBe(false);
    expect(second.gflops).toBe(first.gflops);
    expect(calls()).toBe(4);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.entries).toHaveLength(1);
    expect(doc.entries[0]).toMatchObject({ cpu: 'cpu-x', threads: 1, shape });
  });

  it.skipIf(cpuBudget().threads < 2)('measures again for another thread count, CPU or shape, keeping the others', () => {
    const file = join(dir, 'b.json');
    const { ops, calls } = countingOps();
    calibrate(ops, 'cpu-x', 1, shape, file);
    expect(calibrate(ops, 'cpu-x', 2, shape, file).measured).toBe(true);
    expect(calibrate(ops, 'cpu-y', 1, shape, file).measured).toBe(true);
    expect(calibrate(ops, 'cpu-x', 1, { ...shape, M: 128 }, file).measured).toBe(true);
    expect(calls()).toBe(16);
    expect(calibrate(ops, 'cpu-x', 1, shape, file).measured).toBe(false);
    expect(calibrate(ops, 'cpu-x', 2, shape, file).measured).toBe(false);
    expect(JSON.parse(readFileSync(file, 'utf8')).entries).toHaveLength(4);
  });

  it('measures with no more threads than the machine has (a pool of 100,000 cannot be made), keyed by those', () => {
    const file = join(dir, 'many.json');
    const { ops } = countingOps();
    const c = calibrate(ops, 'cpu-x', 100_000, shape, file);
    // the machine's threads within a container's CPU quota (machine.ts cpuBudget)
    expect(c.threads).toBe(cpuBudget().threads);
    expect(calibrate(ops, 'cpu-x', cpuBudget().threads, shape, file).measured).toBe(false);
    // a container's quota of one CPU: 8 threads asked, 1 measured (and kept as 1)
    const quota = join(dir, 'quota.json');
    expect(calibrate(ops, 'cpu-x', 8, shape, quota, 1)).toMatchObject({ threads: 1, measured: true });
    expect(calibrate(ops, 'cpu-x', 1, shape, quota).measured).toBe(false);
  });

  for (const [what, text] of [['not JSON', '{ broken'], ['another format', '{"format":"x","entries":[]}'],
    ['a bad entry', '{"format":"peft-studio-gemm-calibration","entries":[{"cpu":"cpu-x","threads":1,"shape":{"M":64,"N":96,"K":64},"gflops":"fast"}]}']]) {
    it(`ignores a cache file that is ${what} and replaces it`, () => {
      const file = join(dir, `broken-${what.replace(/\W/g, '')}.json`);
      writeFileSync(file, text);
      const { ops } = countingOps();
      const c = calibrate(ops, 'cpu-x', 1, shape, file);
      expect(c.measured).toBe(true);
      expect(calibrate(ops, 'cpu-x', 1, shape, file).measured).toBe(false);
    });
  }
});

describe('calibrationShape', () => {
  it('is the gate/up projection at the tokens per step, clamped to a short measurement', () => {
    expect(calibrationShape(576, 1536, 256)).toEqual({ M: 256, N: 1536, K: 576 });
    expect(calibrationShape(576, 1536, 10)).toEqual({ M: 64, N: 1536, K: 576 });
    expect(calibrationShape(8192, 28672, 8 * 4096)).toEqual({ M: 512, N: 5632, K: 2048 });
  });
});
