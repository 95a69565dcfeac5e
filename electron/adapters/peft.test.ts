import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../engine/native.js';
import { f32ToBf16, bf16ToF32, f32ToF16, f16ToF32 } from '../safetensors/convert.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { FixtureRng } from '../testing/fixture-rng.js';
import { FolderExistsError } from '../files/atomic.js';
import { AdapterConfigError, type AdapterLora } from './peft-config.js';
import {
  AdapterError,
  engineNameToPeftKey,
  loraTensorShapes,
  peftKeyToEngineName,
  readPeftAdapter,
  writePeftAdapter,
  type LoraTensor,
} from './peft.js';

// hidden 16, 4 heads of 4 (q = 16), 2 kv heads (kv = 8), intermediate 24, 3 layers
const spec: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 300, hiddenSize: 16, intermediateSize: 24, numLayers: 3, numHeads: 4, numKvHeads: 2,
  headDim: 4, rmsNormEps: 1e-5, ropeTheta: 1e4, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 64 },
  maxPositionEmbeddings: 64, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
};

let root: string;
let n = 0;
const fresh = () => join(root, `a${n++}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'peft-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function randomTensors(lora: AdapterLora, seed = 5): LoraTensor[] {
  const rng = new FixtureRng(seed);
  return loraTensorShapes(spec, lora).map(({ name, shape }) => ({ name, shape, data: rng.normalArray(shape.reduce((a, d) => a * d, 1), 0.1) }));
}

/** Writes an adapter folder the way PEFT would, from PEFT keys and a config object. */
async function writeRawAdapter(dir: string, config: Record<string, unknown>, tensors: [string, TensorToWrite][]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
}

const f32 = (t: LoraTensor): [string, TensorToWrite] => [engineNameToPeftKey(t.name), { dtype: 'F32', shape: t.shape, data: t.data }];

const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0.05, rslora: false, dora: false, targets: ['v_proj', 'q_proj', 'down_proj'], layers: null, init: 'default' };

describe('key mapping', () => {
  it('maps PEFT keys to engine names and back', () => {
    expect(peftKeyToEngineName('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')).toBe('model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(peftKeyToEngineName('base_model.model.model.layers.3.mlp.down_proj.lora_B.default.weight')).toBe('model.layers.3.mlp.down_proj.lora_B.weight');
    expect(engineNameToPeftKey('model.layers.0.self_attn.q_proj.lora_A.weight')).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  });

  it('lists LoRA shapes: A is [r, in], B is [out, r]', () => {
    expect(loraTensorShapes(spec, { rank: 2, targets: ['down_proj', 'k_proj', 'o_proj'], layers: [1] })).toEqual([
      { name: 'model.layers.1.self_attn.k_proj.lora_A.weight', shape: [2, 16] },
      { name: 'model.layers.1.self_attn.k_proj.lora_B.weight', shape: [8, 2] },
      { name: 'model.layers.1.self_attn.o_proj.lora_A.weight', shape: [2, 16] },
      { name: 'model.layers.1.self_attn.o_proj.lora_B.weight', shape: [16, 2] },
      { name: 'model.layers.1.mlp.down_proj.lora_A.weight', shape: [2, 24] },
      { name: 'model.layers.1.mlp.down_proj.lora_B.weight', shape: [16, 2] },
    ]);
  });
});

describe('writePeftAdapter', () => {
  it('writes adapter_config.json exactly as PEFT 0.20 does', async () => {
    const dir = fresh();
    await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'meta-llama/Llama-3.2-1B', tensors: randomTensors(lora) });
    const text = await readFile(join(dir, 'adapter_config.json'), 'utf8');
    // json.dumps(LoraConfig(...).to_dict(), indent=2, sort_keys=True) for these settings
    expect(text).toBe(`{
  "alora_invocation_tokens": null,
  "alpha_pattern": {},
  "arrow_config": null,
  "auto_mapping": null,
  "base_model_name_or_path": "meta-llama/Llama-3.2-1B",
  "bias": "none",
  "corda_config": null,
  "ensure_weight_tying": false,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 8,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "lora_ga_config": null,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "monteclora_config": null,
  "peft_type": "LORA",
  "peft_version": "0.20.0",
  "qalora_group_size": 16,
  "r": 4,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "down_proj",
    "q_proj",
    "v_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_bdlora": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": false,
  "velora_config": null
}`);
  });

  it('records rsLoRA, gaussian init, chosen layers and a float dropout of 0 as PEFT does', async () => {
    const dir = fresh();
    const custom: AdapterLora = { rank: 2, alpha: 3.5, dropout: 0, rslora: true, targets: ['o_proj'], layers: [2, 0], init: 'gaussian' };
    await writePeftAdapter({ dir, spec, lora: custom, baseModelNameOrPath: '/models/llama', tensors: randomTensors(custom) });
    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      r: 2, lora_alpha: 3.5, lora_dropout: 0, use_rslora: true, init_lora_weights: 'gaussian',
      layers_to_transform: [0, 2], target_modules: ['o_proj'], base_model_name_or_path: '/models/llama',
    });
    expect(Object.keys(config)).toHaveLength(40);
    const text = await readFile(join(dir, 'adapter_config.json'), 'utf8');
    expect(text).toContain('"lora_dropout": 0.0,');
    expect(text).toContain('"layers_to_transform": [\n    0,\n    2\n  ],');
  });

  it('writes F32 tensors under PEFT keys with {"format": "pt"} metadata, and a model card', async () => {
    const dir = fresh();
    const tensors = randomTensors(lora);
    await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'meta-llama/Llama-3.2-1B', tensors, modelCardNotes: 'Trained on 12 examples.' });
    expect((await readdir(dir)).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    const h = await readSafetensorsHeader(join(dir, 'adapter_model.safetensors'));
    expect(h.metadata).toEqual({ format: 'pt' });
    const keys = tensors.map((t) => engineNameToPeftKey(t.name)).sort();
    expect(h.tensors.map((t) => t.name)).toEqual(keys); // all F32: sorted by name
    expect(h.tensors.every((t) => t.dtype === 'F32')).toBe(true);
    expect(h.byName.get('base_model.model.model.layers.2.mlp.down_proj.lora_A.weight')!.shape).toEqual([4, 24]);
    const card = await readFile(join(dir, 'README.md'), 'utf8');
    expect(card.startsWith('---\nbase_model: "meta-llama/Llama-3.2-1B"\nlibrary_name: peft\n')).toBe(true);
    expect(card).toContain('| rank (r) | 4 |');
    expect(card).toContain('| scaling | 2 (alpha / r) |');
    // 3 layers x (q: 4*16+16*4, v: 4*16+8*4, down: 4*24+16*4)
    expect(card).toContain(`| trainable parameters | ${(3 * (128 + 96 + 160)).toLocaleString('en-US')} |`);
    expect(card).toContain('Trained on 12 examples.');
  });

  it('round-trips: read gives the same settings and bit-identical tensors', async () => {
    const dir = fresh();
    const tensors = randomTensors(lora, 9);
    await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'meta-llama/Llama-3.2-1B', tensors });
    const adapter = await readPeftAdapter(dir, spec);
    expect(adapter.lora).toEqual({ ...lora, targets: ['q_proj', 'v_proj', 'down_proj'] });
    expect(adapter.scaling).toBe(2);
    expect(adapter.baseModelNameOrPath).toBe('meta-llama/Llama-3.2-1B');
    expect(adapter.peftVersion).toBe('0.20.0');
    expect(adapter.tensors.map((t) => t.name)).toEqual(loraTensorShapes(spec, lora).map((t) => t.name));
    const given = new Map(tensors.map((t) => [t.name, t]));
    for (const t of adapter.tensors) {
      expect(t.shape).toEqual(given.get(t.name)!.shape);
      expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(given.get(t.name)!.data.buffer))).toBe(true);
    }
  });

  it('refuses a missing, misshapen or extra tensor', async () => {
    const tensors = randomTensors(lora);
    await expect(writePeftAdapter({ dir: fresh(), spec, lora, baseModelNameOrPath: 'b', tensors: tensors.slice(1) }))
      .rejects.toThrow(/LoRA tensor "model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" is missing/);
    const bad = tensors.map((t, i) => (i === 1 ? { ...t, shape: [t.shape[1], t.shape[0]] } : t));
    await expect(writePeftAdapter({ dir: fresh(), spec, lora, baseModelNameOrPath: 'b', tensors: bad }))
      .rejects.toThrow(/"model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight" has shape \[4, 16\] with 64 values; expected \[16, 4\]/);
    const extra = [...tensors, { name: 'model.layers.0.self_attn.k_proj.lora_A.weight', shape: [4, 16], data: new Float32Array(64) }];
    await expect(writePeftAdapter({ dir: fresh(), spec, lora, baseModelNameOrPath: 'b', tensors: extra }))
      .rejects.toThrow(/tensor "model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight" is not part of a rank-4 LoRA/);
    await expect(writePeftAdapter({ dir: fresh(), spec, lora: { ...lora, layers: [3] }, baseModelNameOrPath: 'b', tensors }))
      .rejects.toThrow(/LoRA layer 3 does not exist; the model has layers 0\.\.2/);
  });

  it('never overwrites a non-empty folder unless told to, and leaves no temp folders', async () => {
    const dir = fresh();
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'keep me');
    const err = await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'b', tensors: randomTensors(lora) }).catch((e) => e);
    expect(err).toBeInstanceOf(FolderExistsError);
    expect(err.message).toMatch(/already exists and is not empty\. Choose another folder, or remove it first to replace it/);
    expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe('keep me');
    await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'b', tensors: randomTensors(lora), overwrite: true });
    expect((await readdir(dir)).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    // an empty folder may be used without overwrite
    const empty = fresh();
    await mkdir(empty);
    await writePeftAdapter({ dir: empty, spec, lora, baseModelNameOrPath: 'b', tensors: randomTensors(lora) });
    expect((await readdir(root)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('with keepOtherFiles writes into a folder that holds other files, replacing only the adapter files', async () => {
    const dir = fresh();
    await mkdir(join(dir, 'checkpoints'), { recursive: true });
    await writeFile(join(dir, 'metrics.jsonl'), '{"step":1}\n');
    await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'b', tensors: randomTensors(lora, 1), keepOtherFiles: true });
    const second = randomTensors(lora, 2);
    await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'b', tensors: second, keepOtherFiles: true });
    expect((await readdir(dir)).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'checkpoints', 'metrics.jsonl']);
    expect(await readFile(join(dir, 'metrics.jsonl'), 'utf8')).toBe('{"step":1}\n');
    const back = await readPeftAdapter(dir, spec);
    expect(back.tensors.map((t) => Array.from(t.data))).toEqual(second.map((t) => Array.from(t.data)));
    // a folder that does not exist yet is created
    const missing = join(fresh(), 'run');
    await writePeftAdapter({ dir: missing, spec, lora, baseModelNameOrPath: 'b', tensors: second, keepOtherFiles: true });
    expect((await readdir(missing)).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
  });

  it('leaves nothing behind when the export fails half-way', async () => {
    const dir = fresh();
    const tensors = randomTensors(lora);
    tensors[3] = { ...tensors[3], data: new Float32Array(3) }; // caught before any file is written
    await expect(writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: 'b', tensors })).rejects.toThrow(AdapterError);
    expect((await readdir(root)).filter((f) => f.startsWith('.') || f === dir.slice(root.length + 1))).toEqual([]);
  });
});

describe('readPeftAdapter on folders PEFT wrote', () => {
  const peftConfig = (extra: Record<string, unknown>) => ({
    base_model_name_or_path: 'meta-llama/Llama-3.2-1B', bias: 'none', fan_in_fan_out: false, inference_mode: true,
    init_lora_weights: true, lora_alpha: 16, lora_dropout: 0.1, peft_type: 'LORA', r: 4, rank_pattern: {}, alpha_pattern: {},
    target_modules: ['q_proj', 'v_proj'], task_type: 'CAUSAL_LM', use_rslora: false, use_dora: false, peft_version: '0.13.2', ...extra,
  });

  it('accepts a regex target_modules, "all-linear", layers_to_transform and ".default" keys', async () => {
    const regexLora: AdapterLora = { rank: 4, alpha: 16, dropout: 0.1, rslora: false, dora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    const dir = fresh();
    const tensors = randomTensors(regexLora);
    await writeRawAdapter(dir, peftConfig({ target_modules: '.*\\.(q_proj|v_proj)$' }),
      tensors.map((t) => [engineNameToPeftKey(t.name).replace(/\.weight$/, '.default.weight'), { dtype: 'F32', shape: t.shape, data: t.data }]));
    const adapter = await readPeftAdapter(dir, spec);
    expect(adapter.lora).toEqual(regexLora);
    expect(adapter.tensors.map((t) => Array.from(t.data))).toEqual(tensors.map((t) => Array.from(t.data)));

    const all: AdapterLora = { ...regexLora, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: [1] };
    const dir2 = fresh();
    await writeRawAdapter(dir2, peftConfig({ target_modules: 'all-linear', layers_to_transform: 1, layers_pattern: 'layers', use_rslora: true }),
      randomTensors(all).map(f32));
    const adapter2 = await readPeftAdapter(dir2, spec);
    expect(adapter2.lora).toEqual({ ...all, rslora: true });
    expect(adapter2.scaling).toBe(8); // 16 / sqrt(4)
  });

  it('applies exclude_modules and a suffix target like "self_attn.q_proj"', async () => {
    const dir = fresh();
    const expected: AdapterLora = { rank: 4, alpha: 16, dropout: 0.1, rslora: false, dora: false, targets: ['q_proj'], layers: null, init: 'default' };
    await writeRawAdapter(dir, peftConfig({ target_modules: ['self_attn.q_proj', 'up_proj'], exclude_modules: ['up_proj'] }), randomTensors(expected).map(f32));
    expect((await readPeftAdapter(dir, spec)).lora).toEqual(expected);
  });

  it('converts F16 and BF16 tensors to float32', async () => {
    const small: AdapterLora = { rank: 4, alpha: 16, dropout: 0.1, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    const tensors = randomTensors(small);
    const dir = fresh();
    await writeRawAdapter(dir, peftConfig({}), tensors.map((t, i) => [engineNameToPeftKey(t.name),
      i % 2 === 0 ? { dtype: 'BF16', shape: t.shape, data: f32ToBf16(t.data) } : { dtype: 'F16', shape: t.shape, data: f32ToF16(t.data) }]));
    const adapter = await readPeftAdapter(dir, spec);
    adapter.tensors.forEach((t, i) => {
      const expected = i % 2 === 0 ? bf16ToF32(f32ToBf16(tensors[i].data)) : f16ToF32(f32ToF16(tensors[i].data));
      expect(Array.from(t.data)).toEqual(Array.from(expected));
    });
  });

  it('explains what it cannot read', async () => {
    const small: AdapterLora = { rank: 4, alpha: 16, dropout: 0.1, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    const tensors = randomTensors(small).map(f32);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rank_pattern: { 'model.layers.0.self_attn.q_proj': 8 } }, /field "rank_pattern": is .*per-module ranks are not supported/],
      [{ alpha_pattern: { q_proj: 32 } }, /field "alpha_pattern": .*per-module alphas are not supported/],
      [{ use_dora: 'yes' }, /field "use_dora": must be true or false/],
      [{ peft_type: 'PROMPT_TUNING' }, /field "peft_type": is "PROMPT_TUNING", not "LORA"/],
      [{ target_modules: '(?i).*q_proj' }, /field "target_modules": the regular expression "\(\?i\)\.\*q_proj" uses syntax that cannot be evaluated here/],
      [{ target_modules: ['q_proj', 'lm_head'] }, /selects the output layer lm_head; LoRA is supported on q_proj, k_proj/],
      [{ target_modules: ['mlp'] }, /selects module "model\.layers\.0\.mlp", which is not a linear layer/],
      [{ target_modules: '.*layers\\.0\\.self_attn\\.q_proj|.*layers\\.1\\.self_attn\\.v_proj' }, /adapts different modules in different layers/],
      [{ modules_to_save: ['lm_head'] }, /field "modules_to_save".*not supported/],
      [{ init_lora_weights: 'pissa' }, /field "init_lora_weights": is "pissa": that initialisation changes the base weights/],
      [{ layers_to_transform: [7] }, /field "layers_to_transform": names layer 7 but the model has 3 layers/],
      [{ r: 0 }, /field "r": must be a positive integer/],
    ];
    for (const [extra, message] of cases) {
      const dir = fresh();
      await writeRawAdapter(dir, peftConfig(extra), tensors);
      const err = await readPeftAdapter(dir, spec).catch((e) => e);
      expect(err, JSON.stringify(extra)).toBeInstanceOf(AdapterConfigError);
      expect(err.message).toMatch(message);
      expect(err.message.startsWith(join(dir, 'adapter_config.json'))).toBe(true);
    }
  });

  it('names a missing, misshapen or unexpected tensor', async () => {
    const small: AdapterLora = { rank: 4, alpha: 16, dropout: 0.1, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    const tensors = randomTensors(small).map(f32);
    const missing = fresh();
    await writeRawAdapter(missing, peftConfig({}), tensors.filter(([k]) => !k.includes('layers.2.self_attn.v_proj.lora_B')));
    await expect(readPeftAdapter(missing, spec)).rejects.toThrow(/has no tensor "base_model\.model\.model\.layers\.2\.self_attn\.v_proj\.lora_B\.weight", which adapter_config\.json implies \(rank 4 on q_proj, v_proj\)/);
    const wrongRank = fresh();
    await writeRawAdapter(wrongRank, peftConfig({ r: 8 }), tensors);
    await expect(readPeftAdapter(wrongRank, spec)).rejects.toThrow(/tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" has shape \[4, 16\] but this model and r = 8 need \[8, 16\]/);
    const dora = fresh();
    await writeRawAdapter(dora, peftConfig({}), [...tensors, ['base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', { dtype: 'F32', shape: [16], data: new Float32Array(16) }]]);
    await expect(readPeftAdapter(dora, spec)).rejects.toThrow(/holds the DoRA magnitude "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_magnitude_vector", but .*adapter_config\.json does not set "use_dora": true/);
    const bias = fresh();
    await writeRawAdapter(bias, peftConfig({}), [...tensors, ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias', { dtype: 'F32', shape: [16], data: new Float32Array(16) }]]);
    await expect(readPeftAdapter(bias, spec)).rejects.toThrow(/holds tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.bias", which adapter_config\.json does not account for/);
  });

  it('explains a folder without adapter files', async () => {
    const dir = fresh();
    await mkdir(dir);
    await expect(readPeftAdapter(dir, spec)).rejects.toThrow(/has no adapter_config\.json; this is not a PEFT adapter folder/);
    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(peftConfig({})));
    await expect(readPeftAdapter(dir, spec)).rejects.toThrow(/has no adapter_model\.safetensors/);
    await writeFile(join(dir, 'adapter_model.bin'), 'x');
    await expect(readPeftAdapter(dir, spec)).rejects.toThrow(/holds adapter_model\.bin \(PyTorch pickle\), which is not supported/);
  });
});
