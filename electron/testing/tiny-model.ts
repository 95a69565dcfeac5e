// Writes tiny random Hugging Face model folders for tests: config.json,
// safetensors weights (one file or an index + 2 shards), a real byte-level BPE
// tokenizer and generation_config.json. The weights are N(0, 0.02), the
// norms 1 + N(0, 0.05), drawn from a seeded PRNG in a fixed order, so the same
// options always give the same bytes.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DType, ModelSpec } from '../engine/native.js';
import { expectedTensors } from '../models/folder.js';
import type { SupportedArchitecture } from '../models/config.js';
import { decodeFloatTensor, encodeFloatTensor } from '../safetensors/convert.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { FixtureRng } from './fixture-rng.js';
import { buildTinyTokenizer, TINY_BOS_ID, TINY_EOS_ID, TINY_PAD_ID } from './tiny-tokenizer.js';

export type TinyRopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPosition: number };

export interface TinyModelOptions {
  /** default LlamaForCausalLM */
  arch?: SupportedArchitecture;
  /** vocabulary size, >= 259 (3 special + 256 byte tokens); default 320 */
  vocab?: number;
  hidden?: number; // default 64
  layers?: number; // default 2
  heads?: number; // default 4
  kvHeads?: number; // default 2
  /** default hidden / heads (written to config.json for Qwen3, whose own default is 128) */
  headDim?: number;
  intermediate?: number; // default 128
  tie?: boolean; // default false
  dtype?: DType; // default F32
  ropeScaling?: TinyRopeScaling | null;
  ropeTheta?: number; // default 10000
  rmsNormEps?: number; // default 1e-5
  maxPosition?: number; // default 512
  seed?: number; // default 1
  /** write model.safetensors.index.json + 2 shards instead of model.safetensors */
  sharded?: boolean;
}

export interface TinyModel {
  dir: string;
  /** the spec the folder describes (built from the options, not parsed back) */
  spec: ModelSpec;
  /** the config.json written */
  config: Record<string, unknown>;
  /** every tensor written, with its values as stored (after rounding to dtype) */
  tensors: Map<string, { dtype: DType; shape: number[]; data: Float32Array }>;
  /** the safetensors file names written */
  weightFiles: string[];
}

const MODEL_TYPES: Record<SupportedArchitecture, string> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

const TORCH_DTYPES: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Writes a tiny model into `dir` (created if needed) and describes it. */
export async function writeTinyModel(dir: string, options: TinyModelOptions = {}): Promise<TinyModel> {
  const arch = options.arch ?? 'LlamaForCausalLM';
  const hidden = options.hidden ?? 64;
  const heads = options.heads ?? 4;
  const headDim = options.headDim ?? hidden / heads;
  if (!Number.isInteger(headDim)) throw new Error(`tiny model: hidden ${hidden} is not a multiple of heads ${heads}; pass headDim`);
  const dtype = options.dtype ?? 'F32';
  const rope = options.ropeScaling ?? null;
  const maxPosition = options.maxPosition ?? 512;
  const spec: ModelSpec = {
    architecture: arch,
    vocabSize: options.vocab ?? 320,
    hiddenSize: hidden,
    intermediateSize: options.intermediate ?? 128,
    numLayers: options.layers ?? 2,
    numHeads: heads,
    numKvHeads: options.kvHeads ?? 2,
    headDim,
    rmsNormEps: options.rmsNormEps ?? 1e-5,
    ropeTheta: options.ropeTheta ?? 10000,
    ropeScaling: rope === null
      ? { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: maxPosition }
      : rope.type === 'linear'
        ? { type: 'linear', factor: rope.factor, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: maxPosition }
        : { ...rope },
    maxPositionEmbeddings: maxPosition,
    tieWordEmbeddings: options.tie ?? false,
    attentionBias: arch === 'Qwen2ForCausalLM',
    qkNorm: arch === 'Qwen3ForCausalLM',
  };

  await mkdir(dir, { recursive: true });
  const config = configJson(spec, options, dtype, rope);
  const { tokenizerJson, tokenizerConfig } = buildTinyTokenizer(spec.vocabSize, maxPosition);

  // Weights, in transformers' parameter order, one PRNG stream.
  const rng = new FixtureRng(options.seed ?? 1);
  const tensors = new Map<string, { dtype: DType; shape: number[]; data: Float32Array }>();
  const toWrite: [string, TensorToWrite][] = [];
  for (const { name, shape } of expectedTensors(spec)) {
    const count = shape.reduce((a, d) => a * d, 1);
    const isNorm = /(layernorm|norm)\.weight$/.test(name);
    const values = isNorm ? rng.normalArray(count, 0.05, 1) : rng.normalArray(count, 0.02);
    const { stored, bytes } = encode(values, dtype);
    tensors.set(name, { dtype, shape, data: stored });
    toWrite.push([name, { dtype, shape, data: bytes }]);
  }

  const weightFiles: string[] = [];
  if (options.sharded) {
    const half = Math.ceil(toWrite.length / 2);
    const shards = [toWrite.slice(0, half), toWrite.slice(half)];
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let s = 0; s < shards.length; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      await writeSafetensors(join(dir, file), shards[s], { format: 'pt' });
      weightFiles.push(file);
      for (const [name, t] of shards[s]) {
        weightMap[name] = file;
        totalSize += t.data.byteLength;
      }
    }
    const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    await writeJson(join(dir, 'model.safetensors.index.json'), { metadata: { total_size: totalSize }, weight_map: sortedMap });
  } else {
    await writeSafetensors(join(dir, 'model.safetensors'), toWrite, { format: 'pt' });
    weightFiles.push('model.safetensors');
  }

  await writeJson(join(dir, 'config.json'), config);
  await writeJson(join(dir, 'generation_config.json'), { bos_token_id: TINY_BOS_ID, eos_token_id: TINY_EOS_ID, pad_token_id: TINY_PAD_ID });
  await writeJson(join(dir, 'tokenizer.json'), tokenizerJson);
  await writeJson(join(dir, 'tokenizer_config.json'), tokenizerConfig);
  return { dir, spec, config, tensors, weightFiles };
}

function configJson(spec: ModelSpec, options: TinyModelOptions, dtype: DType, rope: TinyRopeScaling | null): Record<string, unknown> {
  const arch = spec.architecture as SupportedArchitecture;
  const config: Record<string, unknown> = {
    architectures: [arch],
    model_type: MODEL_TYPES[arch],
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    hidden_act: 'silu',
    max_position_embeddings: spec.maxPositionEmbeddings,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: rope === null ? null
      : rope.type === 'linear' ? { type: 'linear', factor: rope.factor }
        : {
          rope_type: 'llama3',
          factor: rope.factor,
          low_freq_factor: rope.lowFreqFactor,
          high_freq_factor: rope.highFreqFactor,
          original_max_position_embeddings: rope.originalMaxPosition,
        },
    tie_word_embeddings: spec.tieWordEmbeddings,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: TINY_BOS_ID,
    eos_token_id: TINY_EOS_ID,
    torch_dtype: TORCH_DTYPES[dtype],
  };
  if (options.headDim !== undefined || arch === 'Qwen3ForCausalLM') config.head_dim = spec.headDim;
  if (arch === 'LlamaForCausalLM' || arch === 'Qwen3ForCausalLM') config.attention_bias = false;
  if (arch === 'LlamaForCausalLM') config.mlp_bias = false;
  if (arch === 'MistralForCausalLM') config.sliding_window = null;
  if (arch === 'Qwen2ForCausalLM' || arch === 'Qwen3ForCausalLM') {
    config.use_sliding_window = false;
    config.sliding_window = null;
  }
  return config;
}

/** The bytes to store, and the values they hold (rounded to the dtype). */
function encode(values: Float32Array, dtype: DType): { stored: Float32Array; bytes: Uint8Array } {
  const bytes = encodeFloatTensor(values, dtype);
  return { stored: dtype === 'F32' ? values : decodeFloatTensor(bytes, dtype), bytes };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2) + '\n');
}
