// The demo model's Hugging Face files: its shape, config.json, a seeded random
// initialization (transformers' LlamaPreTrainedModel._init_weights: every
// Linear and Embedding weight ~ normal(0, initializer_range), RMSNorm weights
// 1), and the step that stores trained F32 weights in 16-bit for shipping.
import { writeFile } from 'node:fs/promises';
import { makeFolder } from '../files/make-folder.js';
import { join } from 'node:path';
import type { ModelSpec } from '../engine/native.js';
import { expectedTensors } from '../models/folder.js';
import { Prng } from '../random/prng.js';
import { encodeFloatTensor } from '../safetensors/convert.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';

export const INITIALIZER_RANGE = 0.02;

/** The demo model's shape (vocabSize comes from the trained tokenizer). */
export interface DemoShape {
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  maxPositions: number;
}

export function demoSpec(shape: DemoShape): ModelSpec {
  return {
    architecture: 'LlamaForCausalLM',
    vocabSize: shape.vocabSize,
    hiddenSize: shape.hidden,
    intermediateSize: shape.intermediate,
    numLayers: shape.layers,
    numHeads: shape.heads,
    numKvHeads: shape.kvHeads,
    headDim: shape.hidden / shape.heads,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: shape.maxPositions },
    maxPositionEmbeddings: shape.maxPositions,
    tieWordEmbeddings: false,
    attentionBias: false,
    qkNorm: false,
  };
}

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

export function llamaConfigJson(spec: ModelSpec, ids: { bos: number; eos: number }, dtype: keyof typeof TORCH_DTYPE): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    max_position_embeddings: spec.maxPositionEmbeddings,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: spec.tieWordEmbeddings,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    initializer_range: INITIALIZER_RANGE,
    use_cache: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    torch_dtype: TORCH_DTYPE[dtype],
  };
}

/** Standard normal values from the project's PRNG (Box-Muller, both values used). */
function normals(rng: Prng, count: number, std: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = 1 - rng.nextFloat();
    const u2 = rng.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Seeded initial weights in transformers' parameter order, as F32 model.safetensors. */
export async function writeInitialWeights(dir: string, spec: ModelSpec, seed: number): Promise<void> {
  await makeFolder(dir);
  const rng = new Prng(seed, 0x1a17);
  const tensors: [string, TensorToWrite][] = expectedTensors(spec).map(({ name, shape }) => {
    const count = shape.reduce((a, d) => a * d, 1);
    const data = name.endsWith('norm.weight') ? new Float32Array(count).fill(1) : normals(rng, count, INITIALIZER_RANGE);
    return [name, { dtype: 'F32', shape, data }];
  });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}

/** Rewrites a folder's F32 model.safetensors in `dtype` into another folder's model.safetensors. */
export async function storeWeightsAs(fromDir: string, toDir: string, spec: ModelSpec, dtype: 'F16' | 'BF16'): Promise<void> {
  const header = await readSafetensorsHeader(join(fromDir, 'model.safetensors'));
  const tensors: [string, TensorToWrite][] = [];
  for (const { name, shape } of expectedTensors(spec)) {
    const { data } = await readTensorAsFloat32(header, name);
    tensors.push([name, { dtype, shape, data: encodeFloatTensor(data, dtype) }]);
  }
  await makeFolder(toDir);
  await writeSafetensors(join(toDir, 'model.safetensors'), tensors, { format: 'pt' });
}

export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2) + '\n');
}
