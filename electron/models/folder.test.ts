import { open, mkdtemp, readFile, rm, truncate, unlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec, WeightRef } from '../engine/native.js';
import { decodeFloatTensor } from '../safetensors/convert.js';
import { SafetensorsError } from '../safetensors/format.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { writeTinyModel, type TinyModel } from '../testing/tiny-model.js';
import { expectedTensors, ModelFolderError, openModelFolder, parameterCount } from './folder.js';

let root: string;
let n = 0;
const fresh = () => join(root, `m${n++}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'folder-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Reads a weight's bytes straight from its file at the absolute offset. */
async function valuesAt(ref: WeightRef): Promise<Float32Array> {
  const count = ref.shape.reduce((a, d) => a * d, 1);
  const bytes = new Uint8Array(count * (ref.dtype === 'F32' ? 4 : 2));
  const h = await open(ref.file, 'r');
  try {
    await h.read(bytes, 0, bytes.length, ref.offset);
  } finally {
    await h.close();
  }
  return decodeFloatTensor(bytes, ref.dtype);
}

/** Parameter count from the architecture, written independently of expectedTensors. */
function countByFormula(s: ModelSpec): number {
  const q = s.numHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  const attention = s.hiddenSize * q * 2 + s.hiddenSize * kv * 2 + (s.attentionBias ? q + 2 * kv : 0) + (s.qkNorm ? 2 * s.headDim : 0);
  const mlp = 3 * s.hiddenSize * s.intermediateSize;
  const perLayer = attention + mlp + 2 * s.hiddenSize;
  return s.vocabSize * s.hiddenSize * (s.tieWordEmbeddings ? 1 : 2) + s.numLayers * perLayer + s.hiddenSize;
}

async function expectWeightsMatch(tiny: TinyModel, refs: WeightRef[]): Promise<void> {
  expect(refs.map((r) => r.name).sort()).toEqual([...tiny.tensors.keys()].sort());
  for (const ref of refs) {
    const written = tiny.tensors.get(ref.name)!;
    expect(ref.shape).toEqual(written.shape);
    expect(ref.dtype).toBe(written.dtype);
    expect(Array.from(await valuesAt(ref))).toEqual(Array.from(written.data));
  }
}

describe('expectedTensors', () => {
  it('lists a 1-layer Qwen2 model in transformers order, with q/k/v biases and an lm_head', () => {
    const spec: ModelSpec = {
      architecture: 'Qwen2ForCausalLM', vocabSize: 10, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2, numKvHeads: 1,
      headDim: 4, rmsNormEps: 1e-6, ropeTheta: 1e4, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 32 },
      maxPositionEmbeddings: 32, tieWordEmbeddings: false, attentionBias: true, qkNorm: false,
    };
    expect(expectedTensors(spec)).toEqual([
      { name: 'model.embed_tokens.weight', shape: [10, 8] },
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] },
      { name: 'model.layers.0.self_attn.q_proj.bias', shape: [8] },
      { name: 'model.layers.0.self_attn.k_proj.weight', shape: [4, 8] },
      { name: 'model.layers.0.self_attn.k_proj.bias', shape: [4] },
      { name: 'model.layers.0.self_attn.v_proj.weight', shape: [4, 8] },
      { name: 'model.layers.0.self_attn.v_proj.bias', shape: [4] },
      { name: 'model.layers.0.self_attn.o_proj.weight', shape: [8, 8] },
      { name: 'model.layers.0.mlp.gate_proj.weight', shape: [12, 8] },
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [12, 8] },
      { name: 'model.layers.0.mlp.down_proj.weight', shape: [8, 12] },
      { name: 'model.layers.0.input_layernorm.weight', shape: [8] },
      { name: 'model.layers.0.post_attention_layernorm.weight', shape: [8] },
      { name: 'model.norm.weight', shape: [8] },
      { name: 'lm_head.weight', shape: [10, 8] },
    ]);
    expect(parameterCount(spec)).toBe(countByFormula(spec));
  });
});

describe('writeTinyModel', () => {
  it('writes the same bytes for the same seed, other bytes for another seed', async () => {
    const a = await writeTinyModel(fresh(), { seed: 42, layers: 1 });
    const b = await writeTinyModel(fresh(), { seed: 42, layers: 1 });
    const c = await writeTinyModel(fresh(), { seed: 43, layers: 1 });
    const bytes = (m: TinyModel) => readFile(join(m.dir, 'model.safetensors'));
    expect((await bytes(a)).equals(await bytes(b))).toBe(true);
    expect((await bytes(a)).equals(await bytes(c))).toBe(false);
    expect(await readFile(join(a.dir, 'tokenizer.json'), 'utf8')).toBe(await readFile(join(c.dir, 'tokenizer.json'), 'utf8'));
  });

  it('draws weights with std 0.02 and norms around 1', async () => {
    const tiny = await writeTinyModel(fresh(), { layers: 1, vocab: 1024, hidden: 128 });
    const stats = (x: Float32Array) => {
      const mean = x.reduce((a, v) => a + v, 0) / x.length;
      return { mean, std: Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length) };
    };
    const embed = stats(tiny.tensors.get('model.embed_tokens.weight')!.data); // 131072 values
    expect(Math.abs(embed.mean)).toBeLessThan(0.001);
    expect(embed.std).toBeGreaterThan(0.0195);
    expect(embed.std).toBeLessThan(0.0205);
    const norm = stats(tiny.tensors.get('model.norm.weight')!.data);
    expect(Math.abs(norm.mean - 1)).toBeLessThan(0.02);
    expect(norm.std).toBeGreaterThan(0.03);
    expect(norm.std).toBeLessThan(0.07);
  });
});

describe('openModelFolder', () => {
  it('opens a single-file Llama folder: WeightRefs point at the right bytes', async () => {
    const tiny = await writeTinyModel(fresh(), { arch: 'LlamaForCausalLM', seed: 3 });
    const folder = await openModelFolder(tiny.dir);
    expect(folder.spec).toEqual(tiny.spec);
    expect(folder.files).toEqual([join(tiny.dir, 'model.safetensors')]);
    expect(folder.storedDType).toBe('F32');
    expect(folder.parameterCount).toBe(countByFormula(tiny.spec));
    expect(folder.weightBytes).toBe(folder.parameterCount * 4);
    expect(folder.unusedTensors).toEqual([]);
    expect(folder.hasTokenizer).toBe(true);
    await expectWeightsMatch(tiny, folder.weights);
  });

  it('opens a sharded BF16 Qwen2 folder through the index', async () => {
    const tiny = await writeTinyModel(fresh(), { arch: 'Qwen2ForCausalLM', dtype: 'BF16', sharded: true, layers: 3 });
    expect(tiny.weightFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const folder = await openModelFolder(tiny.dir);
    expect(folder.files.map((f) => f.slice(tiny.dir.length + 1))).toEqual(tiny.weightFiles);
    expect(new Set(folder.weights.map((w) => w.file)).size).toBe(2);
    expect(folder.storedDType).toBe('BF16');
    expect(folder.weights.some((w) => w.name === 'model.layers.2.self_attn.v_proj.bias')).toBe(true);
    expect(folder.parameterCount).toBe(countByFormula(tiny.spec));
    expect(folder.weightBytes).toBe(folder.parameterCount * 2);
    await expectWeightsMatch(tiny, folder.weights);
    // the values written are BF16 values: their low 16 float32 bits are zero
    const norm = tiny.tensors.get('model.norm.weight')!.data;
    expect(new Uint32Array(norm.buffer).every((bits) => (bits & 0xffff) === 0)).toBe(true);
  });

  it('opens tied Qwen3 (q_norm/k_norm, no lm_head) and Mistral F16 folders', async () => {
    const qwen3 = await writeTinyModel(fresh(), { arch: 'Qwen3ForCausalLM', tie: true, headDim: 32 });
    const q = await openModelFolder(qwen3.dir);
    expect(q.spec.headDim).toBe(32);
    expect(q.weights.some((w) => w.name === 'lm_head.weight')).toBe(false);
    expect(q.weights.find((w) => w.name === 'model.layers.1.self_attn.k_norm.weight')!.shape).toEqual([32]);
    expect(q.weights.find((w) => w.name === 'model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([4 * 32, 64]);
    await expectWeightsMatch(qwen3, q.weights);
    const mistral = await writeTinyModel(fresh(), { arch: 'MistralForCausalLM', dtype: 'F16' });
    const m = await openModelFolder(mistral.dir);
    expect(m.storedDType).toBe('F16');
    await expectWeightsMatch(mistral, m.weights);
  });

  it('names a missing tensor', async () => {
    const tiny = await writeTinyModel(fresh());
    const without: [string, TensorToWrite][] = [...tiny.tensors]
      .filter(([name]) => name !== 'model.layers.1.mlp.up_proj.weight')
      .map(([name, t]) => [name, { dtype: 'F32', shape: t.shape, data: t.data }]);
    await writeSafetensors(join(tiny.dir, 'model.safetensors'), without);
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(
      /model\.safetensors has no tensor "model\.layers\.1\.mlp\.up_proj\.weight" \(shape \[128, 64\]\), which a LlamaForCausalLM with this config\.json needs/);
  });

  it('names a tensor whose shape does not match config.json', async () => {
    const tiny = await writeTinyModel(fresh());
    const config = JSON.parse(await readFile(join(tiny.dir, 'config.json'), 'utf8'));
    await writeFile(join(tiny.dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: 96 }));
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(
      /model\.safetensors: tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[128, 64\] but config\.json implies \[96, 64\]/);
  });

  it('reports extra tensors as unused and requires lm_head when untied', async () => {
    const tiny = await writeTinyModel(fresh(), { layers: 1 });
    const tensors: [string, TensorToWrite][] = [...tiny.tensors].map(([name, t]) => [name, { dtype: 'F32', shape: t.shape, data: t.data }]);
    tensors.push(['model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [8], data: new Float32Array(8) }]);
    await writeSafetensors(join(tiny.dir, 'model.safetensors'), tensors);
    expect((await openModelFolder(tiny.dir)).unusedTensors).toEqual(['model.layers.0.self_attn.rotary_emb.inv_freq']);
    await writeSafetensors(join(tiny.dir, 'model.safetensors'), tensors.filter(([name]) => name !== 'lm_head.weight'));
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(/has no tensor "lm_head\.weight"/);
  });

  it('names a shard the index lists but the folder lacks, and a tensor missing from its shard', async () => {
    const tiny = await writeTinyModel(fresh(), { sharded: true });
    const indexPath = join(tiny.dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    await writeFile(indexPath, JSON.stringify(index));
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(
      /the index says tensor "model\.norm\.weight" is in .*model-00001-of-00002\.safetensors, but that file does not contain it/);
    await unlink(join(tiny.dir, 'model-00002-of-00002.safetensors'));
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(/model-00002-of-00002\.safetensors: missing, but model\.safetensors\.index\.json lists it/);
  });

  it('passes on a damaged shard as a SafetensorsError naming it', async () => {
    const tiny = await writeTinyModel(fresh(), { sharded: true });
    const shard = join(tiny.dir, 'model-00002-of-00002.safetensors');
    const size = (await readSafetensorsHeader(shard)).fileSize;
    await truncate(shard, size - 10);
    const err = await openModelFolder(tiny.dir).catch((e) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err.message).toMatch(/model-00002-of-00002\.safetensors: tensor ".*": the tensors need \d+ data bytes but the file has only \d+ after the header\. The file looks truncated: download it again\./);
  });

  it('explains a missing folder, a file path, no weights and .bin-only weights', async () => {
    const missing = join(root, 'nope');
    await expect(openModelFolder(missing)).rejects.toThrow(new RegExp(`${missing}: no such folder`));
    const tiny = await writeTinyModel(fresh());
    await expect(openModelFolder(join(tiny.dir, 'config.json'))).rejects.toThrow(/is a file, not a folder/);
    await unlink(join(tiny.dir, 'model.safetensors'));
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(/has neither model\.safetensors nor model\.safetensors\.index\.json/);
    await writeFile(join(tiny.dir, 'pytorch_model.bin'), 'x');
    await expect(openModelFolder(tiny.dir)).rejects.toThrow(/has only PyTorch \.bin weights; this app reads safetensors/);
    const noConfig = fresh();
    await mkdir(noConfig);
    await expect(openModelFolder(noConfig)).rejects.toThrow(/config\.json: the file does not exist/);
    await expect(openModelFolder(noConfig)).rejects.toBeInstanceOf(Error);
  });

  it('refuses weights in a dtype the engine cannot load', async () => {
    const tiny = await writeTinyModel(fresh(), { layers: 1 });
    const tensors: [string, TensorToWrite][] = [...tiny.tensors].map(([name, t]) => name === 'model.norm.weight'
      ? [name, { dtype: 'F8_E4M3', shape: t.shape, data: new Uint8Array(t.shape[0]) }]
      : [name, { dtype: 'F32', shape: t.shape, data: t.data }]);
    await writeSafetensors(join(tiny.dir, 'model.safetensors'), tensors);
    const err = await openModelFolder(tiny.dir).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFolderError);
    expect(err.message).toMatch(/tensor "model\.norm\.weight" is stored as F8_E4M3; only F32, F16 and BF16 weights can be loaded/);
  });
});

describe('folder notices', () => {
  it('says when the weights have layers config.json does not use, and names other unused tensors', async () => {
    const tiny = await writeTinyModel(fresh(), { layers: 4 });
    const config = JSON.parse(await readFile(join(tiny.dir, 'config.json'), 'utf8'));
    await writeFile(join(tiny.dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 3 }));
    const folder = await openModelFolder(tiny.dir);
    // 9 tensors per layer: q, k, v, o, gate, up, down, 2 norms
    expect(folder.unusedTensors.filter((t) => t.startsWith('model.layers.3.'))).toHaveLength(9);
    expect(folder.notices).toEqual([
      'config.json has 3 layers (num_hidden_layers) but the weights have 4: model.layers.3.* (9 tensors) are not used. ' +
      'If config.json was edited by mistake, restore its num_hidden_layers; the model runs with the first 3 layers only',
    ]);

    const plain = await writeTinyModel(fresh(), { layers: 1 });
    const tensors: [string, TensorToWrite][] = [...plain.tensors].map(([name, t]) => [name, { dtype: 'F32', shape: t.shape, data: t.data }]);
    tensors.push(['model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [8], data: new Float32Array(8) }]);
    for (const name of ['vision.a', 'vision.b', 'vision.c', 'vision.d']) tensors.push([name, { dtype: 'F32', shape: [2], data: new Float32Array(2) }]);
    await writeSafetensors(join(plain.dir, 'model.safetensors'), tensors);
    // inv_freq is a buffer transformers ignores silently: not counted
    // (so is a saved lm_head.weight under tie_word_embeddings, below)
    expect((await openModelFolder(plain.dir)).notices).toEqual([
      '4 tensors in the weight files are not used by a LlamaForCausalLM with this config.json: vision.a, vision.b, vision.c and 1 more. ' +
      'They are ignored; if the model should use them, config.json does not describe these weights',
    ]);
  });

  it('counts one layer and one tensor in the singular', async () => {
    const tiny = await writeTinyModel(fresh(), { layers: 2 });
    const config = JSON.parse(await readFile(join(tiny.dir, 'config.json'), 'utf8'));
    await writeFile(join(tiny.dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 1 }));
    const tensors: [string, TensorToWrite][] = [...tiny.tensors].map(([name, t]) => [name, { dtype: 'F32', shape: t.shape, data: t.data }]);
    tensors.push(['vision.a', { dtype: 'F32', shape: [2], data: new Float32Array(2) }]);
    await writeSafetensors(join(tiny.dir, 'model.safetensors'), tensors);
    expect((await openModelFolder(tiny.dir)).notices).toEqual([
      'config.json has 1 layer (num_hidden_layers) but the weights have 2: model.layers.1.* (9 tensors) are not used. ' +
      'If config.json was edited by mistake, restore its num_hidden_layers; the model runs with the first 1 layer only',
      '1 tensor in the weight files is not used by a LlamaForCausalLM with this config.json: vision.a. ' +
      'It is ignored; if the model should use it, config.json does not describe this weight',
    ]);
  });

  it('a saved lm_head.weight of a model with tied embeddings is not worth a notice', async () => {
    const tied = await writeTinyModel(fresh(), { layers: 1, tie: true });
    const tensors: [string, TensorToWrite][] = [...tied.tensors].map(([name, t]) => [name, { dtype: 'F32', shape: t.shape, data: t.data }]);
    const embed = tied.tensors.get('model.embed_tokens.weight')!;
    tensors.push(['lm_head.weight', { dtype: 'F32', shape: embed.shape, data: embed.data }]);
    await writeSafetensors(join(tied.dir, 'model.safetensors'), tensors);
    const folder = await openModelFolder(tied.dir);
    expect(folder.unusedTensors).toEqual(['lm_head.weight']);
    expect(folder.notices).toEqual([]);
  });

  it('names a generation_config.json that is not valid JSON, with the parser error', async () => {
    const tiny = await writeTinyModel(fresh());
    expect((await openModelFolder(tiny.dir)).notices).toEqual([]);
    await writeFile(join(tiny.dir, 'generation_config.json'), '{"eos_token_id": 2,}');
    const [notice] = (await openModelFolder(tiny.dir)).notices;
    expect(notice).toMatch(new RegExp(`^${join(tiny.dir, 'generation_config.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON \\(.+\\), so it is ignored: .* Fix the file \\(or delete it\\)$`));
    await writeFile(join(tiny.dir, 'generation_config.json'), '[1]');
    expect((await openModelFolder(tiny.dir)).notices[0]).toMatch(/generation_config\.json: is not a JSON object \(found an array\)/);
  });
});

describe('a folder passed as a model that is not one', () => {
  it('an adapter or run folder: pass it as --adapter, with the base model it names as --model', async () => {
    const adapter = fresh();
    await mkdir(adapter);
    await writeFile(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', base_model_name_or_path: '/models/base' }));
    await expect(openModelFolder(adapter)).rejects.toThrow(
      `${adapter}: is an adapter folder (adapter_config.json), not a model. Pass it as --adapter ${adapter} (eval, generate, merge; train: --init-adapter) and its base model as --model /models/base (from adapter_config.json)`);
    // run.json names the folder the run really used
    await writeFile(join(adapter, 'run.json'), JSON.stringify({ config: { model: '/runs/base-as-trained' } }));
    await expect(openModelFolder(adapter)).rejects.toThrow(
      `${adapter}: is a training run folder (run.json), not a model. Pass it as --adapter ${adapter} (eval, generate, merge; train: --init-adapter) and its base model as --model /runs/base-as-trained (from run.json)`);
    const unnamed = fresh();
    await mkdir(unnamed);
    await writeFile(join(unnamed, 'adapter_config.json'), '{}');
    await expect(openModelFolder(unnamed)).rejects.toThrow(/not a model\. Pass it as --adapter .* and its base model folder as --model$/);
  });

  it('a Hugging Face cache folder: points at snapshots/<hash>, listing them', async () => {
    const cache = join(fresh(), 'models--meta-llama--Llama-3.2-1B');
    await mkdir(join(cache, 'snapshots', 'a1b2c3'), { recursive: true });
    await mkdir(join(cache, 'blobs'));
    await expect(openModelFolder(cache)).rejects.toThrow(
      `${cache}: is a Hugging Face cache folder, not a model folder; the model files are in ${join(cache, 'snapshots', 'a1b2c3')}: pick that folder`);
    await mkdir(join(cache, 'snapshots', 'ffee99'));
    await expect(openModelFolder(cache)).rejects.toThrow(
      `the model files are in one of its snapshots (a1b2c3, ffee99): pick ${join(cache, 'snapshots', '<hash>')}, e.g. ${join(cache, 'snapshots', 'a1b2c3')}`);
    await expect(openModelFolder(join(cache, 'snapshots'))).rejects.toThrow(/is the snapshots folder of a Hugging Face cache, not a model folder; the model files are in one of its snapshots \(a1b2c3, ffee99\)/);
    const empty = join(fresh(), 'models--org--name');
    await mkdir(join(empty, 'snapshots'), { recursive: true });
    await expect(openModelFolder(empty)).rejects.toThrow(/snapshots folder is empty: the download did not finish; download the model again/);
  });

  it('any other folder without config.json: the config.json message as before', async () => {
    const plain = fresh();
    await mkdir(plain);
    await expect(openModelFolder(plain)).rejects.toThrow(/config\.json: the file does not exist\. A Hugging Face model folder must contain config\.json/);
  });
});
