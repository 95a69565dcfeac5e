// DoRA through the real training path on tiny models (real engine, real
// files): the magnitudes start at the base's row norms (float64 here; on a
// 4-bit base the dequantized weight's), the training writer saves exactly the
// engine's tensors under PEFT's keys, run.json and the adapter say DoRA, an
// --init-adapter run starts from a DoRA adapter's own magnitudes, an
// interrupted run resumes to the same bytes, and the memory estimate counts
// the magnitudes the engine trains.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../adapters/peft.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { createEngine, DEFAULT_NF4 } from '../session.js';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { saveAdapterFolder } from './adapter-files.js';
import { makeBatch } from './batches.js';
import { estimateRun } from './memory-check.js';
import { setUpMethod } from './run.js';
import { trainConfigFromSettings } from './settings.js';

const THREADS = ['--threads', '2'];

/** Float64 norm of each row of a row-major [rows, cols] matrix. */
function rowNorms(W: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let c = 0; c < cols; c++) sq += W[r * cols + c] ** 2;
    out[r] = Math.sqrt(sq);
  }
  return out;
}

function worstRelative(got: Float32Array, want: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / want[i]);
  return worst;
}

describe('train --dora', () => {
  it('starts each magnitude at its row norm of W: the base as stored, or the dequantized 4-bit base under QLoRA', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 61 });
    const dir = tempDir('dora-init');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(4, 12));
    const folder = await openModelFolder(model.dir);
    const engine = createEngine(loadAddon(), folder, { threads: 2, quantization: DEFAULT_NF4 });
    try {
      for (const method of ['lora', 'qlora'] as const) {
        const out = join(dir, method);
        const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', method, '--dora', '--targets', 'k_proj,down_proj', '--steps', '0', ...THREADS]);
        expect(r.code, r.stderr).toBe(0);
        const adapter = await readPeftAdapter(out, model.spec);
        expect(adapter.lora.dora).toBe(true);
        let magnitudes = 0;
        for (const t of adapter.tensors) {
          if (t.name.endsWith('.lora_B.weight')) expect(t.data.every((v) => v === 0), t.name).toBe(true);
          if (!t.name.endsWith('.lora_magnitude_vector')) continue;
          const weight = t.name.replace(/lora_magnitude_vector$/, 'weight');
          const stored = model.tensors.get(weight)!;
          const [rows, cols] = stored.shape;
          const fromStored = rowNorms(stored.data, rows, cols);
          // the 4-bit weight as the QLoRA run holds it: the engine dequantizes it; the norms are taken here
          const fromNf4 = rowNorms(engine.getTensor(weight), rows, cols);
          const want = method === 'lora' ? fromStored : fromNf4;
          expect(worstRelative(t.data, want), `${method} ${t.name}`).toBeLessThan(1e-6);
          // the two bases differ by the NF4 error: each run took its own
          expect(worstRelative(t.data, method === 'lora' ? fromNf4 : fromStored), `${method} ${t.name}`).toBeGreaterThan(1e-4);
          magnitudes++;
        }
        expect(magnitudes).toBe(2 * 2); // 2 layers x (k_proj, down_proj)
      }
    } finally {
      engine.dispose();
    }
  });

  it('saves exactly the engine\'s trained tensors, magnitudes included, under PEFT\'s keys', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 62 });
    const dir = tempDir('dora-save');
    const folder = await openModelFolder(model.dir);
    const config = trainConfigFromSettings({ model: model.dir, data: join(dir, 'unused.jsonl'), out: join(dir, 'run'), dora: true, targets: ['q_proj', 'up_proj'], rank: 2, dropout: 0.1 });
    const engine = createEngine(loadAddon(), folder, { threads: 2, seed: 3 });
    try {
      const layout = await setUpMethod(engine, folder, config, { encode: () => [] });
      expect(layout).toEqual({ kind: 'lora', lora: config.lora });
      const names = engine.parameters().filter((p) => p.trainable).map((p) => p.name);
      const initial = new Map(names.map((n) => [n, Float32Array.from(engine.getTensor(n))]));
      const batch = makeBatch(cycleRows(3, 10).map((r) => ({ inputIds: r.input_ids, labels: r.input_ids })));
      for (let step = 0; step < 3; step++) {
        await engine.forwardBackward(batch, 1 / 27);
        await engine.optimizerStep({ kind: 'adamw', lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 });
      }
      const out = join(dir, 'saved');
      await saveAdapterFolder(out, { engine, spec: folder.spec, layout: layout!, baseModel: model.dir });
      const header = await readSafetensorsHeader(join(out, 'adapter_model.safetensors'));
      expect(header.byName.get('base_model.model.model.layers.1.mlp.up_proj.lora_magnitude_vector')).toMatchObject({ dtype: 'F32', shape: [128] });
      expect(header.byName.get('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector')).toMatchObject({ dtype: 'F32', shape: [64] });
      expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).use_dora).toBe(true);
      const back = await readPeftAdapter(out, folder.spec);
      // the file's tensors are the engine's trainables, in its order
      expect(back.tensors.map((t) => t.name)).toEqual(names);
      for (const t of back.tensors) {
        expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(engine.getTensor(t.name).buffer)), t.name).toBe(true);
        // every tensor trained (lora_B and m moved from their starts)
        expect(t.data.some((v, i) => v !== initial.get(t.name)![i]), t.name).toBe(true);
      }
    } finally {
      engine.dispose();
    }
  });

  it('records dora in run.json and the adapter; an --init-adapter run starts from the adapter\'s own magnitudes', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 63 });
    const dir = tempDir('dora-run');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(12, 16));
    const first = join(dir, 'first');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', first, '--dora', '--targets', 'all-linear', '--rank', '4',
      '--dropout', '0.1', '--lr', '1e-2', '--steps', '12', '--batch-size', '4', '--scheduler', 'constant', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(first, 'run.json'), 'utf8'));
    expect(run.config.lora).toMatchObject({ dora: true, rank: 4, dropout: 0.1 });
    // the file size said before the run is the file written
    expect(run.resolved.adapter_file_bytes).toBe(statSync(join(first, 'adapter_model.safetensors')).size);
    // the engine's trainables: A, B and m of 7 linears in 2 layers
    const spec = model.spec;
    const outs = [64, 32, 32, 64, 128, 128, 64];
    const ins = [64, 64, 64, 64, 64, 64, 128];
    expect(run.resolved.trainable_parameters).toBe(2 * outs.reduce((n, o, i) => n + 4 * (ins[i] + o) + o, 0));
    expect(JSON.parse(readFileSync(join(first, 'adapter_config.json'), 'utf8'))).toMatchObject({ use_dora: true, r: 4, lora_dropout: 0.1 });
    const losses = readJsonLines(join(first, 'metrics.jsonl')).map((m) => m.loss);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);

    // --steps 0 from the DoRA adapter: the files hold its tensors unchanged (magnitudes loaded, not re-initialised)
    const second = join(dir, 'second');
    const c = await cli(['train', '--model', model.dir, '--data', data, '--out', second, '--init-adapter', first, '--steps', '0', ...THREADS]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(second, 'run.json'), 'utf8')).config.lora).toMatchObject({ dora: true, rank: 4 });
    const a = await readPeftAdapter(first, spec);
    const b = await readPeftAdapter(second, spec);
    expect(b.lora.dora).toBe(true);
    expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
    b.tensors.forEach((t, i) => expect(Array.from(t.data), t.name).toEqual(Array.from(a.tensors[i].data)));
    // and they are not the row norms a fresh DoRA would start from
    const m = a.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.lora_magnitude_vector')!;
    expect(worstRelative(m.data, rowNorms(model.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data, 64, 64))).toBeGreaterThan(1e-4);
  });

  it('an interrupted DoRA run resumes to the bytes of an uninterrupted one', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 64 });
    const dir = tempDir('dora-resume');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(8, 12));
    const args = (out: string) => ['train', '--model', model.dir, '--data', data, '--out', out, '--dora', '--targets', 'q_proj,v_proj,gate_proj',
      '--dropout', '0.1', '--weight-decay', '0.01', '--lr', '1e-2', '--steps', '4', '--save-every', '2', '--batch-size', '2', '--threads', '1'];
    const straight = join(dir, 'straight');
    expect((await cli(args(straight))).code).toBe(0);
    const broken = join(dir, 'broken');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    let crashed;
    try {
      crashed = await cli(args(broken));
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    expect(crashed.code).not.toBe(0);
    const resumed = await cli(['train', '--resume', broken]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(broken, 'run.json'), 'utf8'));
    expect(record.config.lora.dora).toBe(true);
    expect(record.resumes.map((x: { from_step: number }) => x.from_step)).toEqual([2]);
    expect(readFileSync(join(broken, 'adapter_model.safetensors')).equals(readFileSync(join(straight, 'adapter_model.safetensors')))).toBe(true);
  });

  it('the memory estimate counts the magnitudes the engine trains', async () => {
    const model = await tinyModel({ seed: 65 });
    const folder = await openModelFolder(model.dir);
    const addon = loadAddon();
    const settings = { model: model.dir, data: 'd.jsonl', out: 'o', targets: ['v_proj', 'o_proj'], rank: 3, layers: [1] };
    const plain = trainConfigFromSettings(settings);
    const dora = trainConfigFromSettings({ ...settings, dora: true });
    const plainEstimate = estimateRun(addon, folder, plain, plain.lora);
    const doraEstimate = estimateRun(addon, folder, dora, dora.lora);
    const engine = createEngine(addon, folder, { threads: 1 });
    try {
      engine.setupLora({ ...dora.lora!, seed: 1 });
      const trained = engine.parameters().filter((p) => p.trainable).reduce((n, p) => n + p.shape.reduce((a, d) => a * d, 1), 0);
      expect(doraEstimate.trainableParams).toBe(trained);
    } finally {
      engine.dispose();
    }
    // v_proj out 32 + o_proj out 64, in layer 1 only
    expect(doraEstimate.trainableParams - plainEstimate.trainableParams).toBe(32 + 64);
    expect(doraEstimate.totalBytes).toBeGreaterThan(plainEstimate.totalBytes);
  });
});
