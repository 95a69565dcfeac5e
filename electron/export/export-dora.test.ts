// DoRA adapters through merge and export: the merged weights against the
// formula W' = (m / ||W + s·B·A||_row) ⊙ (W + s·B·A) computed here in float64;
// the merged model's logits against the engine running the adapter (which ties
// the export to the engine's DoRA); a BF16 base rounded once; a QLoRA DoRA run
// exported as merged / peft / gguf-model, each passing its reload check; and
// the GGUF adapter refused, naming the formats that hold DoRA.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdapterLora } from '../adapters/peft-config.js';
import { loraScaling } from '../adapters/peft-config.js';
import type { LoraTensor } from '../adapters/peft.js';
import { loadAddon } from '../engine/load.js';
import type { NativeEngine } from '../engine/native.js';
import { openModelFolder } from '../models/folder.js';
import { bf16BitsToF32 } from '../safetensors/convert.js';
import { readSafetensorsHeader, readTensorBytes } from '../safetensors/read.js';
import { attachAdapter, createEngine } from '../session.js';
import { maxAbs, maxAbsDiff } from '../testing/compare.js';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { writeRandomDoraAdapter } from '../testing/random-dora-adapter.js';
import { rescaleRowsToMagnitude } from './dora-merge.js';
import { LOSS_TOLERANCE } from './verify.js';

const THREADS = ['--threads', '2'];
const DORA: AdapterLora = { rank: 4, alpha: 12, dropout: 0, rslora: false, dora: true, targets: ['q_proj', 'o_proj', 'up_proj', 'down_proj'], layers: null, init: 'default' };

/** (m / ||W + s·B·A||_row) ⊙ (W + s·B·A) in float64, written out from the formula. */
function referenceDoraMerge(W: Float32Array, A: LoraTensor, B: LoraTensor, m: LoraTensor, s: number): Float64Array {
  const [r, inF] = A.shape;
  const out = B.shape[0];
  const merged = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) {
    let sq = 0;
    for (let i = 0; i < inF; i++) {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += B.data[o * r + k] * A.data[k * inF + i];
      const w = W[o * inF + i] + s * ba;
      merged[o * inF + i] = w;
      sq += w * w;
    }
    const f = m.data[o] / Math.sqrt(sq);
    for (let i = 0; i < inF; i++) merged[o * inF + i] *= f;
  }
  return merged;
}

/** s·(B·A)[o, i] in float64. */
function sumBA(A: LoraTensor, B: LoraTensor, s: number, o: number, i: number): number {
  const [r, inF] = A.shape;
  let ba = 0;
  for (let k = 0; k < r; k++) ba += B.data[o * r + k] * A.data[k * inF + i];
  return s * ba;
}

/** The logits after each token of `tokens`, fed one at a time through the KV cache. */
async function logitsPerPosition(engine: NativeEngine, tokens: number[]): Promise<Float32Array[]> {
  engine.resetCache(tokens.length);
  const out: Float32Array[] = [];
  for (const t of tokens) out.push(Float32Array.from(await engine.decode(Int32Array.of(t))));
  return out;
}

async function evalLoss(args: string[]): Promise<number> {
  const r = await cli(['eval', ...args, '--batch-size', '4', ...THREADS]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).loss;
}

describe('merging a DoRA adapter', () => {
  it('F32 base: the merged weights are the float64 formula, and the merged model\'s logits are the engine\'s with the adapter', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 41 });
    const dir = tempDir('dora-merge');
    const adapterDir = join(dir, 'adapter');
    const adapter = await writeRandomDoraAdapter(adapterDir, model.spec, model.dir, DORA, (name) => model.tensors.get(name)!.data);
    const out = join(dir, 'merged');
    const r = await cli(['merge', '--model', model.dir, '--adapter', adapterDir, '--out', out, ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('note: DoRA adapter: every adapted weight is (m / ||W + scaling·B·A||_row) · (W + scaling·B·A)');
    expect(r.stderr).toContain('merged 8 weights (scaling 3)');

    const s = loraScaling(DORA);
    const header = await readSafetensorsHeader(join(out, 'model.safetensors'));
    const baseHeader = await readSafetensorsHeader(join(model.dir, 'model.safetensors'));
    let adapted = 0;
    for (const info of baseHeader.tensors) {
      const bytes = await readTensorBytes(header, info.name);
      const module = info.name.replace(/\.weight$/, '');
      const A = adapter.get(`${module}.lora_A.weight`);
      if (!A) {
        expect(Buffer.from(bytes).equals(Buffer.from(await readTensorBytes(baseHeader, info.name))), info.name).toBe(true);
        continue;
      }
      const merged = new Float32Array(bytes.slice().buffer);
      const W = model.tensors.get(info.name)!.data;
      const B = adapter.get(`${module}.lora_B.weight`)!;
      const m = adapter.get(`${module}.lora_magnitude_vector`)!;
      const ref = referenceDoraMerge(W, A, B, m, s);
      // W + s·B·A is formed in float32 (each element: the r products and the
      // sum rounded, r + 1 roundings of at most 2^-24 of the terms' magnitudes),
      // then the row rescaled once (the norm in float64): per element within
      // (r + 2)·2^-24 of f·(|W| + Σ|s·B·A|), f = m / n the row's factor.
      const [r, inF] = A.shape;
      let worst = 0;
      for (let i = 0; i < ref.length; i++) {
        const o = Math.floor(i / inF);
        let terms = Math.abs(W[i]);
        for (let k = 0; k < r; k++) terms += Math.abs(s * B.data[o * r + k] * A.data[k * inF + (i % inF)]);
        const f = Math.abs(ref[i]) > 0 ? Math.abs(ref[i] / (W[i] + sumBA(A, B, s, o, i % inF))) : 1;
        worst = Math.max(worst, Math.abs(merged[i] - ref[i]) / (f * terms * (r + 2) * 2 ** -24));
      }
      expect(worst, info.name).toBeLessThanOrEqual(1);
      adapted++;
    }
    expect(adapted).toBe(8);

    // the engine running the adapter (DoRA forward) and the merged model, position by position
    const addon = loadAddon();
    const base = await openModelFolder(model.dir);
    const tokens = [1, 40, 41, 42, 43, 44, 45, 40, 99, 7];
    const withAdapter = createEngine(addon, base, { threads: 2 });
    const plain = createEngine(addon, base, { threads: 2 });
    const mergedEngine = createEngine(addon, await openModelFolder(out), { threads: 2 });
    try {
      await attachAdapter(withAdapter, base, adapterDir, 0);
      const a = await logitsPerPosition(withAdapter, tokens);
      const b = await logitsPerPosition(mergedEngine, tokens);
      const p = await logitsPerPosition(plain, tokens);
      for (let t = 0; t < tokens.length; t++) {
        const scale = maxAbs(a[t]);
        expect(maxAbsDiff(a[t], b[t]) / scale, `position ${t}`).toBeLessThan(1e-5);
        // the adapter does change the model: the comparison above can fail
        expect(maxAbsDiff(a[t], p[t]) / scale, `position ${t}`).toBeGreaterThan(1e-2);
      }
    } finally {
      withAdapter.dispose();
      plain.dispose();
      mergedEngine.dispose();
    }
  });

  it('BF16 base: the merged weights are the float64 formula rounded to BF16', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 42, dtype: 'BF16' });
    const dir = tempDir('dora-merge-bf16');
    const adapterDir = join(dir, 'adapter');
    const lora = { ...DORA, targets: ['k_proj', 'gate_proj'] as AdapterLora['targets'], layers: [1], rslora: true };
    const adapter = await writeRandomDoraAdapter(adapterDir, model.spec, model.dir, lora, (name) => model.tensors.get(name)!.data, 5);
    const out = join(dir, 'merged');
    expect((await cli(['merge', '--model', model.dir, '--adapter', adapterDir, '--out', out, ...THREADS])).code).toBe(0);
    const folder = await openModelFolder(out);
    expect(folder.storedDType).toBe('BF16');
    let checked = 0;
    for (const name of ['model.layers.1.self_attn.k_proj.weight', 'model.layers.1.mlp.gate_proj.weight']) {
      const module = name.replace(/\.weight$/, '');
      const ref = referenceDoraMerge(model.tensors.get(name)!.data, adapter.get(`${module}.lora_A.weight`)!, adapter.get(`${module}.lora_B.weight`)!,
        adapter.get(`${module}.lora_magnitude_vector`)!, loraScaling(lora));
      const file = folder.weights.find((w) => w.name === name)!.file;
      const bits = new Uint16Array((await readTensorBytes(await readSafetensorsHeader(file), name)).slice().buffer);
      for (let i = 0; i < ref.length; i++) {
        // BF16 keeps 8 significant bits: nearest rounding is within half a step, 2^-8 relative
        expect(Math.abs(bf16BitsToF32(bits[i]) - ref[i]), `${name}[${i}]`).toBeLessThanOrEqual(Math.abs(ref[i]) * 2 ** -8);
        checked++;
      }
    }
    expect(checked).toBe(64 * 32 + 128 * 64); // k_proj [kv 32, hidden 64], gate_proj [128, 64]
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 20));
    const withAdapter = await evalLoss(['--model', model.dir, '--adapter', adapterDir, '--data', data]);
    const merged = await evalLoss(['--model', out, '--data', data]);
    expect(Math.abs(merged - withAdapter) / withAdapter).toBeLessThan(LOSS_TOLERANCE.merged.BF16);
  });
});

describe('rescaleRowsToMagnitude', () => {
  it('rescales each row to its magnitude, the norm summed in float64', () => {
    const W = Float32Array.of(3, 4, 0, -2);
    rescaleRowsToMagnitude(W, 2, 2, Float32Array.of(10, 1), 'w');
    expect(Array.from(W)).toEqual([6, 8, 0, -1]);
  });
  it('refuses a row whose W + s·B·A is zero, naming the weight and the row (m / 0 has no value)', () => {
    // row 1 of W + s·B·A (the merge adds it first) cancelled to zero
    const W = Float32Array.of(1, 2, 0, 0);
    expect(() => rescaleRowsToMagnitude(W, 2, 2, Float32Array.of(3, 1), 'model.layers.0.mlp.up_proj.weight')).toThrow(
      'cannot merge the DoRA adapter into model.layers.0.mlp.up_proj.weight: row 1 of W + scaling·B·A has norm 0');
  });
});

describe('export of a DoRA run', () => {
  it('QLoRA + DoRA: merged, peft and gguf-model pass their checks on the 4-bit base; the GGUF adapter is refused', { timeout: 300_000 }, async () => {
    const model = await tinyModel({ seed: 43 });
    const dir = tempDir('export-dora');
    const data = writeJsonl(join(dir, 'cycle.jsonl'), cycleRows(16, 24));
    const run = join(dir, 'run');
    const trained = await cli(['train', '--model', model.dir, '--data', data, '--out', run, '--method', 'qlora', '--dora', '--targets', 'q_proj,v_proj,down_proj',
      '--rank', '4', '--lr', '2e-2', '--steps', '4', '--batch-size', '4', ...THREADS]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(run, 'adapter_config.json'), 'utf8')).use_dora).toBe(true);

    const rows = writeJsonl(join(dir, 'rows.jsonl'), cycleRows(8, 24));
    const refused = await cli(['export', run, '--format', 'gguf', '--out', join(dir, 'gguf'), '--check-data', rows, ...THREADS]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${run}: is a DoRA adapter (adapter_config.json "use_dora": true). A GGUF adapter holds LoRA factors only`);
    expect(refused.stderr).toContain('Export it with --format gguf-model (one GGUF file with the adapter merged in, for llama.cpp and Ollama) or --format merged');
    expect(existsSync(join(dir, 'gguf'))).toBe(false);
    // with other formats too: refused before any is written
    const mixed = await cli(['export', run, '--format', 'merged,gguf', '--out', join(dir, 'mixed'), '--check-data', rows, ...THREADS]);
    expect(mixed.code).not.toBe(0);
    expect(existsSync(join(dir, 'mixed'))).toBe(false);

    const out = join(dir, 'exports');
    const r = await cli(['export', run, '--format', 'merged,peft,gguf-model', '--out', out, '--check-data', rows, ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.check.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    expect(summary.check.checks.map((c: { format: string; passed: boolean }) => [c.format, c.passed])).toEqual([['merged', true], ['peft', true], ['gguf-model', true]]);
    expect(JSON.parse(readFileSync(join(out, 'peft', 'adapter_config.json'), 'utf8')).use_dora).toBe(true);
    // independently: eval of the run (its 4-bit base rebuilt from run.json) against eval of the merged folder
    const on4bit = await evalLoss(['--model', model.dir, '--adapter', run, '--data', rows]);
    const merged = await evalLoss(['--model', join(out, 'merged'), '--data', rows]);
    expect(Math.abs(summary.check.sourceLoss - on4bit) / on4bit).toBeLessThan(1e-6);
    expect(Math.abs(merged - on4bit) / on4bit).toBeLessThan(LOSS_TOLERANCE.merged.F32);
  });
});
