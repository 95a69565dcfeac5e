import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../engine/native.js';
import { ModelConfigError, parseModelConfig, readModelConfig } from './config.js';

const FILE = '/models/x/config.json';

// config.json files shaped like the published ones (sizes copied from the
// public model cards), with the ModelSpec each must give written out by hand.

const llama32_1b = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 128256,
};

const mistral7b = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  vocab_size: 32000,
};

const qwen25_05b = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const qwen3_06b = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const noScaling = (maxPos: number) => ({ type: 'none' as const, factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: maxPos });

describe('parseModelConfig for the supported architectures', () => {
  it('Llama 3.2 1B (llama3 RoPE scaling, tied embeddings, explicit head_dim)', () => {
    const parsed = parseModelConfig(llama32_1b, FILE);
    const expected: ModelSpec = {
      architecture: 'LlamaForCausalLM',
      vocabSize: 128256,
      hiddenSize: 2048,
      intermediateSize: 8192,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 8192 },
      maxPositionEmbeddings: 131072,
      tieWordEmbeddings: true,
      attentionBias: false,
      qkNorm: false,
    };
    expect(parsed.spec).toEqual(expected);
    expect(parsed.storedDType).toBe('BF16');
    expect(parsed.bosTokenId).toBe(128000);
    expect(parsed.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(parsed.slidingWindow).toBeNull();
  });

  it('Mistral 7B (head_dim from hidden/heads, sliding window reported)', () => {
    const parsed = parseModelConfig(mistral7b, FILE);
    expect(parsed.spec).toEqual({
      architecture: 'MistralForCausalLM',
      vocabSize: 32000,
      hiddenSize: 4096,
      intermediateSize: 14336,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: noScaling(32768),
      maxPositionEmbeddings: 32768,
      tieWordEmbeddings: false,
      attentionBias: false,
      qkNorm: false,
    } satisfies ModelSpec);
    expect(parsed.slidingWindow).toBe(4096);
    expect(parsed.eosTokenIds).toEqual([2]);
  });

  it('Qwen2.5 0.5B (q/k/v biases always)', () => {
    expect(parseModelConfig(qwen25_05b, FILE).spec).toEqual({
      architecture: 'Qwen2ForCausalLM',
      vocabSize: 151936,
      hiddenSize: 896,
      intermediateSize: 4864,
      numLayers: 24,
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      rmsNormEps: 1e-6,
      ropeTheta: 1000000,
      ropeScaling: noScaling(32768),
      maxPositionEmbeddings: 32768,
      tieWordEmbeddings: true,
      attentionBias: true,
      qkNorm: false,
    } satisfies ModelSpec);
  });

  it('Qwen3 0.6B (qk-norm, head_dim 128 != hidden/heads)', () => {
    expect(parseModelConfig(qwen3_06b, FILE).spec).toEqual({
      architecture: 'Qwen3ForCausalLM',
      vocabSize: 151936,
      hiddenSize: 1024,
      intermediateSize: 3072,
      numLayers: 28,
      numHeads: 16,
      numKvHeads: 8,
      headDim: 128,
      rmsNormEps: 1e-6,
      ropeTheta: 1000000,
      ropeScaling: noScaling(40960),
      maxPositionEmbeddings: 40960,
      tieWordEmbeddings: true,
      attentionBias: false,
      qkNorm: true,
    } satisfies ModelSpec);
  });
});

describe('transformers defaults', () => {
  const minimal = { vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4 };

  it('Llama: eps 1e-6, theta 10000, kv heads = heads, head_dim = hidden/heads, untied, 2048 positions', () => {
    const parsed = parseModelConfig({ architectures: ['LlamaForCausalLM'], ...minimal }, FILE);
    expect(parsed.spec).toEqual({
      architecture: 'LlamaForCausalLM', vocabSize: 100, hiddenSize: 64, intermediateSize: 128, numLayers: 2,
      numHeads: 4, numKvHeads: 4, headDim: 16, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: noScaling(2048),
      maxPositionEmbeddings: 2048, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    } satisfies ModelSpec);
    expect(parsed.storedDType).toBeNull();
    expect(parsed.eosTokenIds).toEqual([]);
  });

  it('per-architecture position limits and Qwen3 head_dim 128', () => {
    expect(parseModelConfig({ architectures: ['MistralForCausalLM'], ...minimal }, FILE).spec.maxPositionEmbeddings).toBe(131072);
    expect(parseModelConfig({ architectures: ['Qwen2ForCausalLM'], ...minimal }, FILE).spec.maxPositionEmbeddings).toBe(32768);
    const qwen3 = parseModelConfig({ architectures: ['Qwen3ForCausalLM'], ...minimal }, FILE).spec;
    expect(qwen3.headDim).toBe(128);
    expect(qwen3.maxPositionEmbeddings).toBe(32768);
  });

  it('falls back to model_type when architectures is missing', () => {
    expect(parseModelConfig({ model_type: 'qwen2', ...minimal }, FILE).spec.architecture).toBe('Qwen2ForCausalLM');
  });

  it('reads rope_scaling with the old "type" key, rope_parameters (transformers v5), and "dtype"', () => {
    const linear = parseModelConfig({ architectures: ['LlamaForCausalLM'], ...minimal, max_position_embeddings: 4096, rope_scaling: { type: 'linear', factor: 2.0 } }, FILE);
    expect(linear.spec.ropeScaling).toEqual({ type: 'linear', factor: 2, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 4096 });
    const v5 = parseModelConfig({
      architectures: ['LlamaForCausalLM'], ...minimal, dtype: 'float16',
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000.0, factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
    }, FILE);
    expect(v5.spec.ropeTheta).toBe(500000);
    expect(v5.spec.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 8192 });
    expect(v5.storedDType).toBe('F16');
    const dflt = parseModelConfig({ architectures: ['LlamaForCausalLM'], ...minimal, rope_parameters: { rope_type: 'default', rope_theta: 1234 } }, FILE);
    expect(dflt.spec.ropeTheta).toBe(1234);
    expect(dflt.spec.ropeScaling.type).toBe('none');
  });
});

describe('parseModelConfig errors', () => {
  const minimal = { architectures: ['LlamaForCausalLM'], vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4 };
  const errorOf = (json: unknown) => {
    try {
      parseModelConfig(json, FILE);
    } catch (e) {
      expect(e).toBeInstanceOf(ModelConfigError);
      return (e as Error).message;
    }
    throw new Error('expected an error');
  };

  it('lists the supported architectures for an unsupported one', () => {
    expect(errorOf({ ...minimal, architectures: ['GPT2LMHeadModel'] })).toBe(
      `${FILE}: field "architectures": ["GPT2LMHeadModel"] is not supported. Choose a model with one of the supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.`);
    expect(errorOf({ ...minimal, architectures: undefined, model_type: 'gpt2' })).toMatch(/field "architectures": is missing and model_type "gpt2" is not supported.*LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/);
  });

  it('names a missing or invalid field and the file', () => {
    expect(errorOf({ ...minimal, hidden_size: undefined })).toBe(`${FILE}: field "hidden_size": is missing. config.json is incomplete: download it again.`);
    expect(errorOf({ ...minimal, num_attention_heads: '4' })).toMatch(/field "num_attention_heads": must be a positive integer \(found "4"\)/);
    expect(errorOf({ ...minimal, rms_norm_eps: -1 })).toMatch(/field "rms_norm_eps": must be a positive number \(found -1\)/);
    expect(errorOf({ ...minimal, num_key_value_heads: 3 })).toMatch(/field "num_key_value_heads": 3 does not divide num_attention_heads \(4\)/);
    expect(errorOf({ ...minimal, hidden_size: 66 })).toMatch(/field "hidden_size": 66 is not a multiple of num_attention_heads \(4\) and there is no head_dim/);
    expect(errorOf({ ...minimal, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toMatch(/field "rope_scaling.low_freq_factor": is missing/);
    expect(errorOf([1])).toMatch(/is not a JSON object/);
  });

  it('refuses what the engine does not implement', () => {
    expect(errorOf({ ...minimal, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toMatch(/field "rope_scaling.rope_type": "yarn" RoPE scaling is not supported \(supported: default, linear, llama3\)/);
    expect(errorOf({ ...minimal, attention_bias: true })).toMatch(/field "attention_bias": is true, which in LlamaForCausalLM also puts a bias on o_proj/);
    expect(errorOf({ ...minimal, hidden_act: 'gelu' })).toMatch(/field "hidden_act": is "gelu"; only "silu"/);
    expect(errorOf({ ...minimal, quantization_config: { quant_method: 'gptq' } })).toMatch(/pre-quantized \(gptq\).*Use the original \(unquantized\)/);
    expect(errorOf({ ...minimal, architectures: ['Qwen2ForCausalLM'], use_sliding_window: true })).toMatch(/field "use_sliding_window": is true/);
    // the engine's loss head needs an MLP of width 2 or more: refused at load, not as an internal error mid-run
    expect(errorOf({ ...minimal, intermediate_size: 1 })).toBe(
      `${FILE}: field "intermediate_size": is 1; the engine needs at least 2 (a real model's MLP is far wider). config.json is damaged or not the model's own: download config.json again.`);
    expect(parseModelConfig({ ...minimal, intermediate_size: 2 }, FILE).spec.intermediateSize).toBe(2);
  });
});

describe('readModelConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cfg-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and names it in errors', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(qwen3_06b));
    expect((await readModelConfig(path)).spec.qkNorm).toBe(true);
    await writeFile(path, '{"architectures": [');
    await expect(readModelConfig(path)).rejects.toThrow(new RegExp(`${path}: is not valid JSON`));
    await expect(readModelConfig(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: the file does not exist/);
  });
});
