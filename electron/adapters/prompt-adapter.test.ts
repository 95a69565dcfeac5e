// PROMPT_TUNING and PREFIX_TUNING adapter folders: the exact files PEFT
// writes, read back, and refused with a clear message when they do not fit.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../engine/native.js';
import { f32ToBf16 } from '../safetensors/convert.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { FixtureRng } from '../testing/fixture-rng.js';
import { readAnyAdapter } from './any-adapter.js';
import { readPromptAdapter, writePromptAdapter } from './prompt-adapter.js';
import { buildPrefixTuningConfig, buildPromptTuningConfig, prefixTableWidth } from './prompt-config.js';

// A Llama with grouped-query attention: hidden 64, 2 layers, 4 heads of 16, 2 key/value heads.
const spec: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 320, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2,
  headDim: 16, rmsNormEps: 1e-5, ropeTheta: 1e4, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 512 },
  maxPositionEmbeddings: 512, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
};
const BASE = '/models/tiny';

// The adapter_config.json text PEFT 0.20 writes for this model, written by
// hand from PEFT's dataclasses (PeftConfigMixin: task_type, peft_type,
// auto_mapping, peft_version; PeftConfig: base_model_name_or_path, revision,
// inference_mode; PromptLearningConfig: num_virtual_tokens, token_dim,
// num_transformer_submodules, num_attention_heads, num_layers,
// modules_to_save; PromptTuningConfig: prompt_tuning_init,
// prompt_tuning_init_text, tokenizer_name_or_path, tokenizer_kwargs), after
// get_peft_model filled the model fields (_prepare_prompt_learning_config)
// and save_pretrained dumped it (json.dumps(indent=2, sort_keys=True),
// inference_mode true). The calls:
//   PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=8, prompt_tuning_init="TEXT",
//                      prompt_tuning_init_text="Classify:", tokenizer_name_or_path="/models/tiny")
const PEFT_PROMPT_TEXT = `{
  "auto_mapping": null,
  "base_model_name_or_path": "/models/tiny",
  "inference_mode": true,
  "modules_to_save": null,
  "num_attention_heads": 4,
  "num_layers": 2,
  "num_transformer_submodules": 1,
  "num_virtual_tokens": 8,
  "peft_type": "PROMPT_TUNING",
  "peft_version": "0.20.0",
  "prompt_tuning_init": "TEXT",
  "prompt_tuning_init_text": "Classify:",
  "revision": null,
  "task_type": "CAUSAL_LM",
  "token_dim": 64,
  "tokenizer_kwargs": null,
  "tokenizer_name_or_path": "/models/tiny"
}`;
//   PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4, prefix_projection=True)
// GQA: token_dim = 64 // 4 * 2 = 32, num_attention_heads = 2, and the unset
// encoder_hidden_size becomes that token_dim. init_weights (PrefixTuningConfig) stays None.
const PEFT_PREFIX_PROJECTION = `{
  "auto_mapping": null,
  "base_model_name_or_path": "/models/tiny",
  "encoder_hidden_size": 32,
  "inference_mode": true,
  "init_weights": null,
  "modules_to_save": null,
  "num_attention_heads": 2,
  "num_layers": 2,
  "num_transformer_submodules": 1,
  "num_virtual_tokens": 4,
  "peft_type": "PREFIX_TUNING",
  "peft_version": "0.20.0",
  "prefix_projection": true,
  "revision": null,
  "task_type": "CAUSAL_LM",
  "token_dim": 32
}`;

let root: string;
let n = 0;
const fresh = () => join(root, `a${n++}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'prompt-adapter-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The safetensors header, parsed independently of electron/safetensors. */
async function rawHeader(file: string): Promise<{ header: Record<string, unknown>; dataStart: number; bytes: Buffer }> {
  const bytes = await readFile(file);
  const len = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + len).toString('utf8')), dataStart: 8 + len, bytes };
}

async function writeRaw(dir: string, config: Record<string, unknown> | string, tensors: [string, TensorToWrite][]): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'adapter_config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

describe('adapter_config.json as PEFT writes it', () => {
  it('prompt tuning (TEXT init): every field, sorted, 2-space indent', async () => {
    const dir = fresh();
    const table = new FixtureRng(1).normalArray(8 * 64, 1);
    await writePromptAdapter({ dir, spec, layout: { kind: 'prompt', prompt: { numVirtualTokens: 8, init: 'TEXT', initText: 'Classify:' } }, baseModelNameOrPath: BASE, table });
    expect(await readFile(join(dir, 'adapter_config.json'), 'utf8')).toBe(PEFT_PROMPT_TEXT);
  });

  it('prefix tuning with projection on a GQA model: token_dim = head_dim * kv_heads, heads = kv_heads', async () => {
    const dir = fresh();
    const table = new FixtureRng(2).normalArray(4 * 128, 1);
    await writePromptAdapter({ dir, spec, layout: { kind: 'prefix', prefix: { numVirtualTokens: 4, projection: true, encoderHiddenSize: null } }, baseModelNameOrPath: BASE, table });
    expect(await readFile(join(dir, 'adapter_config.json'), 'utf8')).toBe(PEFT_PREFIX_PROJECTION);
  });

  it('RANDOM / SAMPLE_VOCAB record no text or tokenizer; plain prefix records projection false', () => {
    const random = buildPromptTuningConfig({ numVirtualTokens: 3, init: 'RANDOM', initText: null }, spec, BASE);
    expect(random).toMatchObject({ prompt_tuning_init: 'RANDOM', prompt_tuning_init_text: null, tokenizer_name_or_path: null, num_virtual_tokens: 3 });
    expect(buildPromptTuningConfig({ numVirtualTokens: 3, init: 'SAMPLE_VOCAB', initText: null }, spec, BASE).prompt_tuning_init).toBe('SAMPLE_VOCAB');
    const plain = buildPrefixTuningConfig({ numVirtualTokens: 5, projection: false, encoderHiddenSize: null }, spec, BASE);
    expect(plain).toMatchObject({ prefix_projection: false, encoder_hidden_size: 32, token_dim: 32, num_attention_heads: 2 });
    expect(buildPrefixTuningConfig({ numVirtualTokens: 5, projection: true, encoderHiddenSize: 96 }, spec, BASE).encoder_hidden_size).toBe(96);
    // the same key set as PEFT's dataclass fields, and nothing else
    expect(Object.keys(random).sort()).toEqual(Object.keys(JSON.parse(PEFT_PROMPT_TEXT)).sort());
    expect(Object.keys(plain).sort()).toEqual(Object.keys(JSON.parse(PEFT_PREFIX_PROJECTION)).sort());
  });
});

describe('adapter_model.safetensors', () => {
  it('holds one F32 tensor prompt_embeddings with PEFT\'s shape and metadata {"format":"pt"}', async () => {
    const promptDir = fresh();
    const table = new FixtureRng(3).normalArray(8 * 64, 1);
    await writePromptAdapter({ dir: promptDir, spec, layout: { kind: 'prompt', prompt: { numVirtualTokens: 8, init: 'RANDOM', initText: null } }, baseModelNameOrPath: BASE, table });
    const p = await rawHeader(join(promptDir, 'adapter_model.safetensors'));
    expect(p.header).toEqual({ __metadata__: { format: 'pt' }, prompt_embeddings: { dtype: 'F32', shape: [8, 64], data_offsets: [0, 8 * 64 * 4] } });
    const stored = new Float32Array(p.bytes.buffer.slice(p.bytes.byteOffset + p.dataStart, p.bytes.byteOffset + p.dataStart + 8 * 64 * 4));
    expect(stored).toEqual(table);

    const prefixDir = fresh();
    const width = 2 * 2 * 16 * 2; // num_layers * 2 * head_dim * kv_heads
    expect(prefixTableWidth(spec)).toBe(width);
    await writePromptAdapter({ dir: prefixDir, spec, layout: { kind: 'prefix', prefix: { numVirtualTokens: 4, projection: false, encoderHiddenSize: null } }, baseModelNameOrPath: BASE, table: new Float32Array(4 * width) });
    expect((await rawHeader(join(prefixDir, 'adapter_model.safetensors'))).header).toEqual({
      __metadata__: { format: 'pt' },
      prompt_embeddings: { dtype: 'F32', shape: [4, width], data_offsets: [0, 4 * width * 4] },
    });
  });

  it('refuses to write a table of the wrong size', async () => {
    await expect(writePromptAdapter({ dir: fresh(), spec, layout: { kind: 'prefix', prefix: { numVirtualTokens: 4, projection: false, encoderHiddenSize: null } }, baseModelNameOrPath: BASE, table: new Float32Array(4 * 64) }))
      .rejects.toThrow(/prompt_embeddings has 256 values; prefix tuning with 4 virtual tokens on this model needs \[4, 128\] = 512/);
  });
});

describe('reading adapters back', () => {
  it('round-trips both kinds exactly, and readAnyAdapter dispatches on peft_type', async () => {
    const dir = fresh();
    const table = new FixtureRng(4).normalArray(8 * 64, 1);
    await writePromptAdapter({ dir, spec, layout: { kind: 'prompt', prompt: { numVirtualTokens: 8, init: 'TEXT', initText: 'Classify:' } }, baseModelNameOrPath: BASE, table });
    const back = await readAnyAdapter(dir, spec);
    expect(back.kind).toBe('prompt');
    if (back.kind !== 'prompt') throw new Error('unreachable');
    expect(back.prompt).toEqual({ numVirtualTokens: 8, init: 'TEXT', initText: 'Classify:' });
    expect(back.table).toEqual(table);

    const pdir = fresh();
    const ptable = new FixtureRng(5).normalArray(4 * 128, 1);
    await writePromptAdapter({ dir: pdir, spec, layout: { kind: 'prefix', prefix: { numVirtualTokens: 4, projection: true, encoderHiddenSize: 48 } }, baseModelNameOrPath: BASE, table: ptable });
    const pback = await readAnyAdapter(pdir, spec);
    if (pback.kind !== 'prefix') throw new Error(`read as ${pback.kind}`);
    expect(pback.prefix).toEqual({ numVirtualTokens: 4, projection: true, encoderHiddenSize: 48 });
    expect(pback.table).toEqual(ptable);
  });

  it('reads a folder PEFT wrote (its exact config text, a BF16 table)', async () => {
    const values = new FixtureRng(6).normalArray(4 * 128, 1);
    const bf16 = f32ToBf16(values);
    const dir = await writeRaw(fresh(), PEFT_PREFIX_PROJECTION, [['prompt_embeddings', { dtype: 'BF16', shape: [4, 128], data: bf16 }]]);
    const a = await readPromptAdapter(dir, spec);
    expect(a.kind).toBe('prefix');
    expect(a.shape).toEqual([4, 128]);
    // bf16 -> f32 widening is exact: the top 16 bits of each value
    for (let i = 0; i < values.length; i += 37) {
      const bits = new Uint32Array(new Float32Array([a.table[i]]).buffer)[0];
      expect(bits & 0xffff).toBe(0);
      expect(bits >>> 16).toBe(bf16[i]);
    }
    // a minimal config (PEFT fills the rest in at load) is read as well
    const minimal = await writeRaw(fresh(), { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 2 }, [['prompt_embeddings', { dtype: 'F32', shape: [2, 64], data: new Float32Array(128) }]]);
    expect((await readPromptAdapter(minimal, spec)).kind).toBe('prompt');
  });

  it('refuses adapters that do not fit the model, saying which field or tensor and why', async () => {
    const prefixConfig = JSON.parse(PEFT_PREFIX_PROJECTION) as Record<string, unknown>;
    const table = (shape: number[]): [string, TensorToWrite][] => [['prompt_embeddings', { dtype: 'F32', shape, data: new Float32Array(shape[0] * shape[1]) }]];

    // wrong token_dim: the hidden size recorded by a PEFT release before its GQA fix
    const oldGqa = await writeRaw(fresh(), { ...prefixConfig, token_dim: 64, num_attention_heads: 4 }, table([4, 256]));
    await expect(readPromptAdapter(oldGqa, spec)).rejects.toThrow(/field "token_dim": is 64 but prefix tuning on this model needs head_dim \* num_key_value_heads = 16 \* 2 = 32 \(the hidden size: a PEFT release older than its grouped-query-attention fix/);
    const promptDim = await writeRaw(fresh(), { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 2, token_dim: 96 }, table([2, 96]));
    await expect(readPromptAdapter(promptDim, spec)).rejects.toThrow(/field "token_dim": is 96 but this model's hidden size is 64/);

    // wrong tensor shape for a config that fits
    const shape = await writeRaw(fresh(), prefixConfig, table([4, 64]));
    await expect(readPromptAdapter(shape, spec)).rejects.toThrow(/tensor "prompt_embeddings" has shape \[4, 64\] but adapter_config\.json and this model need num_virtual_tokens x \(num_layers \* 2 \* head_dim \* num_key_value_heads\) = \[4, 128\]/);
    const rows = await writeRaw(fresh(), { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 3 }, table([2, 64]));
    await expect(readPromptAdapter(rows, spec)).rejects.toThrow(/has shape \[2, 64\] but .* need num_virtual_tokens x hidden_size = \[3, 64\]/);

    // unknown or unsupported peft_type
    const ptuning = await writeRaw(fresh(), { peft_type: 'P_TUNING', num_virtual_tokens: 3 }, table([3, 64]));
    await expect(readAnyAdapter(ptuning, spec)).rejects.toThrow(/field "peft_type": is "P_TUNING", which this app does not support\. Supported adapter types: LORA, PROMPT_TUNING, PREFIX_TUNING/);
    const missing = await writeRaw(fresh(), { num_virtual_tokens: 3 }, table([3, 64]));
    await expect(readAnyAdapter(missing, spec)).rejects.toThrow(/field "peft_type": is undefined/);

    // other model: layers
    const layers = await writeRaw(fresh(), { ...prefixConfig, num_layers: 3 }, table([4, 192]));
    await expect(readPromptAdapter(layers, spec)).rejects.toThrow(/field "num_layers": is 3 but the model has 2 layers/);
    // an encoder-decoder adapter
    const seq2seq = await writeRaw(fresh(), { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 2, num_transformer_submodules: 2 }, table([4, 64]));
    await expect(readPromptAdapter(seq2seq, spec)).rejects.toThrow(/field "num_transformer_submodules": is 2; a causal LM has 1/);
    // a tensor besides prompt_embeddings, or a wrongly named one
    const extra = await writeRaw(fresh(), { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 2 }, [...table([2, 64]), ['base_model.model.lm_head.weight', { dtype: 'F32', shape: [1, 1], data: new Float32Array(1) }]]);
    await expect(readPromptAdapter(extra, spec)).rejects.toThrow(/holds tensor "base_model\.model\.lm_head\.weight" besides "prompt_embeddings"/);
    const named = await writeRaw(fresh(), { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 2 }, [['embedding.weight', { dtype: 'F32', shape: [2, 64], data: new Float32Array(128) }]]);
    await expect(readPromptAdapter(named, spec)).rejects.toThrow(/has no tensor "prompt_embeddings" \(found "embedding\.weight"\)/);
    // a LoRA folder given where a prompt adapter is expected
    const lora = await writeRaw(fresh(), { peft_type: 'LORA', r: 2 }, table([2, 64]));
    await expect(readPromptAdapter(lora, spec)).rejects.toThrow(/field "peft_type": is "LORA", not "PROMPT_TUNING" or "PREFIX_TUNING"/);
  });
});
