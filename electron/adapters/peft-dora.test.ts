// DoRA adapters (PEFT use_dora) as files: the magnitude's key and shape as
// PEFT saves it, the config flag, a round trip, PEFT-written folders in 16-bit
// dtypes, and the errors for a missing, misshapen or unannounced magnitude.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../engine/native.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../safetensors/convert.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { FixtureRng } from '../testing/fixture-rng.js';
import type { AdapterLora } from './peft-config.js';
import { engineNameToPeftKey, loraTensorShapes, peftKeyToEngineName, readPeftAdapter, writePeftAdapter, type LoraTensor } from './peft.js';

// hidden 16, 4 heads of 4 (q = 16), 2 kv heads (kv = 8), intermediate 24, 2 layers
const spec: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 300, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2,
  headDim: 4, rmsNormEps: 1e-5, ropeTheta: 1e4, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 64 },
  maxPositionEmbeddings: 64, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
};
const dora: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, dora: true, targets: ['v_proj', 'down_proj'], layers: null, init: 'default' };
const MAGNITUDE_KEY = 'base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector';

let root: string;
let n = 0;
const fresh = () => join(root, `d${n++}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'peft-dora-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function randomTensors(lora: AdapterLora, seed = 3): LoraTensor[] {
  const rng = new FixtureRng(seed);
  return loraTensorShapes(spec, lora).map(({ name, shape }) => ({ name, shape, data: rng.normalArray(shape.reduce((a, d) => a * d, 1), 0.5) }));
}

/** adapter_config.json as PEFT 0.13 writes it for a DoRA on v_proj and down_proj, with `extra` on top. */
const peftConfig = (extra: Record<string, unknown> = {}) => ({
  base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M', bias: 'none', fan_in_fan_out: false, inference_mode: true, init_lora_weights: true,
  lora_alpha: 4, lora_dropout: 0, peft_type: 'LORA', r: 2, target_modules: ['v_proj', 'down_proj'], task_type: 'CAUSAL_LM',
  use_rslora: false, use_dora: true, peft_version: '0.13.2', ...extra,
});

async function writeRawAdapter(dir: string, config: Record<string, unknown>, tensors: [string, TensorToWrite][]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(config));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
}

const f32 = (t: LoraTensor): [string, TensorToWrite] => [engineNameToPeftKey(t.name), { dtype: 'F32', shape: t.shape, data: t.data }];

describe('DoRA tensor names and shapes', () => {
  it('lists each module\'s magnitude [out] right after its lora_B', () => {
    expect(loraTensorShapes(spec, { rank: 2, targets: ['k_proj', 'up_proj'], layers: [0], dora: true })).toEqual([
      { name: 'model.layers.0.self_attn.k_proj.lora_A.weight', shape: [2, 16] },
      { name: 'model.layers.0.self_attn.k_proj.lora_B.weight', shape: [8, 2] },
      { name: 'model.layers.0.self_attn.k_proj.lora_magnitude_vector', shape: [8] },
      { name: 'model.layers.0.mlp.up_proj.lora_A.weight', shape: [2, 16] },
      { name: 'model.layers.0.mlp.up_proj.lora_B.weight', shape: [24, 2] },
      { name: 'model.layers.0.mlp.up_proj.lora_magnitude_vector', shape: [24] },
    ]);
    expect(loraTensorShapes(spec, { rank: 2, targets: ['k_proj'], layers: [0], dora: false }).map((t) => t.name)).not.toContain('model.layers.0.self_attn.k_proj.lora_magnitude_vector');
  });

  it('maps the magnitude key PEFT saves (no ".weight") and a state_dict\'s ".default.weight" form to the engine name', () => {
    expect(engineNameToPeftKey('model.layers.1.mlp.down_proj.lora_magnitude_vector')).toBe(MAGNITUDE_KEY);
    expect(peftKeyToEngineName(MAGNITUDE_KEY)).toBe('model.layers.1.mlp.down_proj.lora_magnitude_vector');
    expect(peftKeyToEngineName('base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector.default.weight')).toBe('model.layers.1.mlp.down_proj.lora_magnitude_vector');
    expect(peftKeyToEngineName('base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector.default')).toBe('model.layers.1.mlp.down_proj.lora_magnitude_vector');
  });
});

describe('writing and reading a DoRA adapter', () => {
  it('writes use_dora true and the magnitudes as F32 [out] under PEFT keys, and reads them back bit for bit', async () => {
    const dir = fresh();
    const tensors = randomTensors(dora);
    await writePeftAdapter({ dir, spec, lora: dora, baseModelNameOrPath: 'HuggingFaceTB/SmolLM2-135M', tensors });
    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config.use_dora).toBe(true);
    const header = await readSafetensorsHeader(join(dir, 'adapter_model.safetensors'));
    const magnitudes = header.tensors.filter((t) => t.name.endsWith('lora_magnitude_vector'));
    // 2 layers x (v_proj, down_proj)
    expect(magnitudes.map((t) => t.name).sort()).toEqual([
      'base_model.model.model.layers.0.mlp.down_proj.lora_magnitude_vector',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector',
      MAGNITUDE_KEY,
      'base_model.model.model.layers.1.self_attn.v_proj.lora_magnitude_vector',
    ]);
    expect(header.byName.get(MAGNITUDE_KEY)).toMatchObject({ dtype: 'F32', shape: [16] });
    expect(header.byName.get('base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector')!.shape).toEqual([8]);
    const card = await readFile(join(dir, 'README.md'), 'utf8');
    expect(card).toContain('# DoRA adapter for HuggingFaceTB/SmolLM2-135M');
    // per layer: v_proj 2*16 + 8*2 + 8, down_proj 2*24 + 16*2 + 16
    expect(card).toContain(`| trainable parameters | ${2 * (56 + 96)} |`);

    const back = await readPeftAdapter(dir, spec);
    expect(back.lora).toEqual({ ...dora, targets: ['v_proj', 'down_proj'] });
    expect(back.tensors.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
    back.tensors.forEach((t, i) => {
      expect(t.shape).toEqual(tensors[i].shape);
      expect(Array.from(t.data)).toEqual(Array.from(tensors[i].data));
    });
  });

  it('reads a PEFT-written DoRA folder with F16 and BF16 magnitudes as float32', async () => {
    const dir = fresh();
    const tensors = randomTensors(dora, 8);
    const half = (t: LoraTensor, i: number): [string, TensorToWrite] => {
      if (!t.name.endsWith('lora_magnitude_vector')) return f32(t);
      return [engineNameToPeftKey(t.name), i % 2 === 0 ? { dtype: 'F16', shape: t.shape, data: f32ToF16(t.data) } : { dtype: 'BF16', shape: t.shape, data: f32ToBf16(t.data) }];
    };
    await writeRawAdapter(dir, peftConfig(), tensors.map(half));
    const back = await readPeftAdapter(dir, spec);
    expect(back.lora.dora).toBe(true);
    back.tensors.forEach((t, i) => {
      if (!t.name.endsWith('lora_magnitude_vector')) return;
      const expected = i % 2 === 0 ? f16ToF32(f32ToF16(tensors[i].data)) : bf16ToF32(f32ToBf16(tensors[i].data));
      expect(Array.from(t.data), t.name).toEqual(Array.from(expected));
    });
  });

  it('names the key and the file of a missing or misshapen magnitude', async () => {
    const tensors = randomTensors(dora).map(f32);
    const missing = fresh();
    await writeRawAdapter(missing, peftConfig(), tensors.filter(([key]) => key !== MAGNITUDE_KEY));
    const missingRead = readPeftAdapter(missing, spec);
    await expect(missingRead).rejects.toThrow(`${join(missing, 'adapter_model.safetensors')}: has no tensor "${MAGNITUDE_KEY}", the DoRA magnitude`);
    await expect(missingRead).rejects.toThrow('"use_dora": true');

    const misshapen = fresh();
    await writeRawAdapter(misshapen, peftConfig(), tensors.map(([key, t]) => (key === MAGNITUDE_KEY ? [key, { dtype: 'F32', shape: [1, 16], data: t.data }] : [key, t])));
    await expect(readPeftAdapter(misshapen, spec)).rejects.toThrow(
      `${join(misshapen, 'adapter_model.safetensors')}: tensor "${MAGNITUDE_KEY}" has shape [1, 16] but a DoRA magnitude of this module needs [16]`);

    const short = fresh();
    await writeRawAdapter(short, peftConfig(), tensors.map(([key, t]) => (key === MAGNITUDE_KEY ? [key, { dtype: 'F32', shape: [8], data: new Float32Array(8) }] : [key, t])));
    await expect(readPeftAdapter(short, spec)).rejects.toThrow(`tensor "${MAGNITUDE_KEY}" has shape [8] but a DoRA magnitude of this module needs [16]`);
  });

  it('refuses magnitudes in an adapter whose config does not set use_dora', async () => {
    const dir = fresh();
    await writeRawAdapter(dir, peftConfig({ use_dora: false }), randomTensors(dora).map(f32));
    await expect(readPeftAdapter(dir, spec)).rejects.toThrow(
      // the first magnitude in the file's (sorted) order
      `${join(dir, 'adapter_model.safetensors')}: holds the DoRA magnitude "base_model.model.model.layers.0.mlp.down_proj.lora_magnitude_vector", but ${join(dir, 'adapter_config.json')} does not set "use_dora": true`);
    const absent = fresh();
    const { use_dora: _dropped, ...withoutFlag } = peftConfig();
    await writeRawAdapter(absent, withoutFlag, randomTensors(dora).map(f32));
    await expect(readPeftAdapter(absent, spec)).rejects.toThrow(/holds the DoRA magnitude .* does not set "use_dora": true/);
  });

  it('refuses to write magnitudes for a plain LoRA, or a DoRA without them', async () => {
    const tensors = randomTensors(dora);
    await expect(writePeftAdapter({ dir: fresh(), spec, lora: { ...dora, dora: false }, baseModelNameOrPath: 'b', tensors }))
      .rejects.toThrow(/tensor "model\.layers\.0\.self_attn\.v_proj\.lora_magnitude_vector" is a DoRA magnitude, but the adapter's settings are a plain LoRA/);
    await expect(writePeftAdapter({ dir: fresh(), spec, lora: dora, baseModelNameOrPath: 'b', tensors: tensors.filter((t) => !t.name.endsWith('lora_magnitude_vector')) }))
      .rejects.toThrow(/LoRA tensor "model\.layers\.0\.self_attn\.v_proj\.lora_magnitude_vector" is missing/);
  });
});
