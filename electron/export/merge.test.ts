// Merging a LoRA adapter into its base: exact arithmetic against a float64
// reference, byte-identical untouched tensors, the base dtype and sharding
// kept, and the merged model scoring as base + adapter does.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loraTensorShapes, writePeftAdapter, type LoraTensor } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import type { ModelSpec } from '../engine/native.js';
import { openModelFolder } from '../models/folder.js';
import { bf16BitsToF32, f32ToBf16Bits } from '../safetensors/convert.js';
import { readSafetensorsHeader, readTensorBytes } from '../safetensors/read.js';
import { Prng } from '../random/prng.js';
import { cli, cycleRows, runBinary, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

const LORA: AdapterLora = { rank: 4, alpha: 12, dropout: 0, rslora: false, targets: ['q_proj', 'o_proj', 'up_proj', 'down_proj'], layers: [1], init: 'default' };

/** An adapter with random A and B (non-zero B, unlike a fresh one). */
async function randomAdapter(dir: string, spec: ModelSpec, baseDir: string, lora = LORA): Promise<Map<string, LoraTensor>> {
  const rng = new Prng(21);
  const tensors = loraTensorShapes(spec, lora).map(({ name, shape }) => ({
    name,
    shape,
    data: Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.3),
  }));
  await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: baseDir, tensors });
  return new Map(tensors.map((t) => [t.name, t]));
}

/** W + s * B @ A in float64. */
function referenceMerge(W: Float32Array, A: LoraTensor, B: LoraTensor, scaling: number): Float64Array {
  const [r, inF] = A.shape;
  const out = B.shape[0];
  const result = Float64Array.from(W);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inF; i++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += B.data[o * r + k] * A.data[k * inF + i];
      result[o * inF + i] += scaling * acc;
    }
  }
  return result;
}

async function evalJson(args: string[]): Promise<{ loss: number; tokens: number }> {
  const r = await cli(['eval', ...args, '--batch-size', '4', '--threads', '2']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('merge', () => {
  it('F32 base: merged weights match float64 W + s·B·A and the merged model scores as base + adapter', async () => {
    const model = await tinyModel({ seed: 31 });
    // named chat templates beside the default one, as transformers saves them: carried along
    mkdirSync(join(model.dir, 'additional_chat_templates'));
    writeFileSync(join(model.dir, 'chat_template.jinja'), '{{ messages[0].content }}');
    writeFileSync(join(model.dir, 'additional_chat_templates', 'tool_use.jinja'), '{{ tools }}');
    const dir = tempDir('merge');
    const adapter = await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    const out = join(dir, 'merged');
    const r = await cli(['merge', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--out', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('merged 4 weights (scaling 3)');

    const header = await readSafetensorsHeader(join(out, 'model.safetensors'));
    const baseHeader = await readSafetensorsHeader(join(model.dir, 'model.safetensors'));
    for (const info of baseHeader.tensors) {
      const merged = new Float32Array((await readTensorBytes(header, info.name)).slice().buffer);
      const module = info.name.replace(/\.weight$/, '');
      const A = adapter.get(`${module}.lora_A.weight`);
      if (!A) {
        expect(Buffer.from(await readTensorBytes(header, info.name)).equals(Buffer.from(await readTensorBytes(baseHeader, info.name))), info.name).toBe(true);
        continue;
      }
      const ref = referenceMerge(model.tensors.get(info.name)!.data, A, adapter.get(`${module}.lora_B.weight`)!, 3);
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(merged[i] - ref[i]) / (Math.abs(ref[i]) + 1e-3));
      expect(worst, info.name).toBeLessThan(1e-5);
    }

    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 20));
    const withAdapter = await evalJson(['--model', model.dir, '--adapter', join(dir, 'adapter'), '--data', data]);
    const base = await evalJson(['--model', model.dir, '--data', data]);
    const merged = await evalJson(['--model', out, '--data', data]);
    expect(Math.abs(withAdapter.loss - base.loss)).toBeGreaterThan(1e-3);
    expect(Math.abs(merged.loss - withAdapter.loss) / withAdapter.loss).toBeLessThan(1e-5);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(model.dir, 'tokenizer.json'), 'utf8'));
    expect(readFileSync(join(out, 'chat_template.jinja'), 'utf8')).toBe('{{ messages[0].content }}');
    expect(readFileSync(join(out, 'additional_chat_templates', 'tool_use.jinja'), 'utf8')).toBe('{{ tools }}');
  });

  it('BF16 sharded base: stays BF16 and sharded, rounded to nearest even, and loads again', async () => {
    const model = await tinyModel({ seed: 32, dtype: 'BF16', sharded: true });
    const dir = tempDir('merge');
    const adapter = await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    const out = join(dir, 'merged');
    // through the built binary
    const r = runBinary(['merge', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--out', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    expect(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')).toBe(readFileSync(join(model.dir, 'model.safetensors.index.json'), 'utf8'));
    const folder = await openModelFolder(out);
    expect(folder.storedDType).toBe('BF16');
    expect(folder.files.length).toBe(2);

    let checked = 0;
    let offByOne = 0;
    for (const ref of folder.weights) {
      const module = ref.name.replace(/\.weight$/, '');
      const A = adapter.get(`${module}.lora_A.weight`);
      if (!A) continue;
      const header = await readSafetensorsHeader(ref.file);
      const bits = new Uint16Array((await readTensorBytes(header, ref.name)).slice().buffer);
      const want = referenceMerge(model.tensors.get(ref.name)!.data, A, adapter.get(`${module}.lora_B.weight`)!, 3);
      for (let i = 0; i < want.length; i++) {
        const exact = f32ToBf16Bits(Math.fround(want[i]));
        if (bits[i] !== exact) {
          // f32 GEMM vs float64 can only flip a value lying on a rounding boundary
          offByOne++;
          expect(Math.abs(bits[i] - exact), `${ref.name}[${i}]`).toBe(1);
          expect(Math.abs(bf16BitsToF32(bits[i]) - want[i])).toBeLessThan(Math.abs(want[i]) * 2 ** -8 + 1e-30);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10_000);
    expect(offByOne / checked).toBeLessThan(1e-3);

    // the merged model scores close to base + adapter (BF16 storage of the merged weights costs a little)
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 20));
    const withAdapter = await evalJson(['--model', model.dir, '--adapter', join(dir, 'adapter'), '--data', data]);
    const merged = await evalJson(['--model', out, '--data', data]);
    expect(Math.abs(merged.loss - withAdapter.loss) / withAdapter.loss).toBeLessThan(2e-3);
  });

  it('refuses to overwrite a non-empty folder and an adapter for another model', async () => {
    const model = await tinyModel({ seed: 33 });
    const dir = tempDir('merge');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    // the model folder itself is an input: refused as such (export-guards.test.ts has every overlap)
    const r = await cli(['merge', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--out', model.dir, '--overwrite']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--out ${model.dir}: is the model folder ${model.dir}`);
    // with --overwrite an earlier merge is replaced, and the result is the same bytes
    const out = join(dir, 'merged');
    expect((await cli(['merge', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--out', out])).code).toBe(0);
    const first = readFileSync(join(out, 'model.safetensors'));
    const again = await cli(['merge', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('the folder already exists and is not empty');
    expect(again.stderr).toContain('pass --overwrite');
    expect((await cli(['merge', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--out', out, '--overwrite'])).code).toBe(0);
    expect(readFileSync(join(out, 'model.safetensors')).equals(first)).toBe(true);
    const r2 = await cli(['merge', '--model', model.dir, '--adapter', model.dir, '--out', join(dir, 'x')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/^peft-studio: .*has no adapter_config\.json; this is not a PEFT adapter folder/);
  });
});
