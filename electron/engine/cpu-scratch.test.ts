// The CPU threads' scratch through the real binding: what a run's engine holds
// beyond its tensors is the estimate's deviceBytes on the CPU
// (native-addon/tests/test_cpu_scratch.cpp checks the formula on many
// configurations; this checks the binding's side of it):
// - a BF16 checkpoint, whose frozen linears and head the 16-bit GEMMs read as
//   stored: to the byte, but for the 16-bit GEMMs' per-thread op(B) slices
//   (a pool thread that took no column task of the largest product holds a
//   smaller one: timing);
// - many steps never pass it: every call of an engine runs on the engine's
//   own thread (binding/engine_thread.h), not on whichever libuv thread is
//   free, each of which would keep its own GEMM buffers;
// - dispose gives it back: a new engine starts from nothing.
// In a child process, so the process-wide tally is this test's alone.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from './load.js';

const dist = (path: string) => JSON.stringify(join(packageRoot(), 'dist', 'electron', path));
const dir = mkdtempSync(join(tmpdir(), 'ps-cpu-scratch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const script = `
const { loadAddon } = await import(${dist('engine/load.js')});
const { openModelFolder, embeddingDType } = await import(${dist('models/folder.js')});
const { createEngine } = await import(${dist('session.js')});
const { writeTinyModel } = await import(${dist('testing/tiny-model.js')});
const addon = loadAddon();
// wide enough that the products split into several row, column and k-blocks (600 rows, 700 wide)
await writeTinyModel(${JSON.stringify(dir)}, { dtype: 'BF16', vocab: 600, hidden: 256, intermediate: 700, heads: 4, kvHeads: 2, layers: 2 });
const folder = await openModelFolder(${JSON.stringify(dir)});
const B = 3, T = 200, threads = 2;
const batch = (seed) => {
  const n = B * T, ids = new Int32Array(n), pos = new Int32Array(n);
  for (let i = 0; i < n; ++i) { ids[i] = (i * 7919 + seed * 104729) % 600; pos[i] = i % T; }
  return { batchSize: B, seqLen: T, inputIds: ids, labels: ids, segments: new Int32Array(n), positions: pos };
};
const lora = { rank: 8, alpha: 16, dropout: 0.1, rslora: false, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: null, init: 'default', seed: 3 };
const step = { kind: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0 };
const estimate = addon.estimateMemory(folder.spec, { method: 'lora', batchSize: B, seqLen: T, lora, gradientCheckpointing: false,
  optimizer: 'adamw', weightDType: embeddingDType(folder), threads, device: 'cpu', precision: 'fp32' });
const held = [];
for (let round = 0; round < 2; ++round) {
  const engine = createEngine(addon, folder, { threads });
  const start = engine.memory().scratchBytes;
  engine.setupLora(lora);
  for (let i = 0; i < 12; ++i) {
    await engine.forwardBackward(batch(i), 1);
    await engine.optimizerStep(step);
    if (i === 0 || i === 11) held.push(engine.memory().scratchBytes);
  }
  await engine.evaluate(batch(99));
  held.push(engine.memory().scratchPeakBytes);
  engine.dispose();
  console.log(JSON.stringify({ round, start }));
}
// a synchronous call that computes (resetCache runs a soft prompt through the model) also runs on the engine's thread
const prompted = createEngine(addon, folder, { threads });
prompted.setupPromptTuning({ numVirtualTokens: 8, init: new Float32Array(8 * 256).fill(0.01) });
prompted.resetCache(64);
prompted.dispose();
console.log(JSON.stringify({ afterPrompt: createEngine(addon, folder, { threads }).memory().scratchBytes }));
console.log(JSON.stringify({ dtype: embeddingDType(folder), estimate: estimate.deviceBytes, perThread: estimate.device.cpuWeightGemmBytes, held }));
`;

describe("the CPU threads' scratch of a running engine", () => {
  it('is the estimate to the byte, does not grow with the steps, and is given back on dispose', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    // each engine starts from nothing: the one disposed before it left no scratch behind
    expect(lines[0]).toEqual({ round: 0, start: 0 });
    expect(lines[1]).toEqual({ round: 1, start: 0 });
    // nor does one whose soft prompt a synchronous call ran through the model
    expect(lines[2]).toEqual({ afterPrompt: 0 });
    const { dtype, estimate, perThread, held } = lines[3];
    expect(dtype).toBe('BF16');
    expect(perThread).toBeGreaterThan(0);
    // after the first step, after the twelfth, and the peak with the evaluation, in both rounds
    expect(held).toHaveLength(6);
    for (const h of held as number[]) {
      expect(h).toBeLessThanOrEqual(estimate);
      expect(h).toBeGreaterThan(estimate - perThread);
    }
  }, 300_000);
});
