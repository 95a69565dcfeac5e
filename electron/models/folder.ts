// Opens a Hugging Face model folder: config.json plus model.safetensors or a
// sharded model.safetensors.index.json. Every shard header is validated once,
// the tensors the spec needs are checked by name, shape and dtype, and the
// result is the list of WeightRefs the engine memory-maps.

import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DType, ModelSpec, WeightRef } from '../engine/native.js';
import { readModelConfig, type ParsedModelConfig } from './config.js';
import { bnbWeightRefs, isBlockLinearWeight, type BnbFolderQuantization } from './bnb.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { unusedTensorNotices } from './unused-tensors.js';
import { notAModelFolder } from './not-a-model.js';
import { generationConfigProblem } from './generation-config.js';
import type { SafetensorsHeader, SafetensorsTensorInfo } from '../safetensors/format.js';

export const CONFIG_FILE = 'config.json';
export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** A problem with a model folder; names the folder or file and the tensor. */
export class ModelFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFolderError';
  }
}

export interface ModelFolder {
  /** absolute path of the folder */
  dir: string;
  config: ParsedModelConfig;
  spec: ModelSpec;
  /** exactly the tensors the engine needs, in expectedTensors order */
  weights: WeightRef[];
  /** the safetensors files, absolute paths, sorted */
  files: string[];
  /** parameters of the model as transformers counts them (tied embeddings once) */
  parameterCount: number;
  /** the dtype holding most of the parameters */
  storedDType: DType;
  /** bytes of weight data in the files (needed tensors only) */
  weightBytes: number;
  /** tensors in the files the model does not use (e.g. rotary_emb.inv_freq) */
  unusedTensors: string[];
  /** what the user should know about the folder (unused tensors, a broken generation_config.json); callers print or show them */
  notices: string[];
  hasTokenizer: boolean;
  /** saved in 4-bit NF4 by bitsandbytes (config.json's quantization_config): open it with this quantization */
  quantization: BnbFolderQuantization | null;
}

/**
 * Names and shapes of every tensor a model with this spec has, in
 * transformers' parameter order. lm_head is absent when embeddings are tied.
 */
export function expectedTensors(spec: ModelSpec): { name: string; shape: number[] }[] {
  const h = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [spec.vocabSize, h] }];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push({ name: `${p}self_attn.q_proj.weight`, shape: [q, h] });
    if (spec.attentionBias) out.push({ name: `${p}self_attn.q_proj.bias`, shape: [q] });
    out.push({ name: `${p}self_attn.k_proj.weight`, shape: [kv, h] });
    if (spec.attentionBias) out.push({ name: `${p}self_attn.k_proj.bias`, shape: [kv] });
    out.push({ name: `${p}self_attn.v_proj.weight`, shape: [kv, h] });
    if (spec.attentionBias) out.push({ name: `${p}self_attn.v_proj.bias`, shape: [kv] });
    out.push({ name: `${p}self_attn.o_proj.weight`, shape: [h, q] });
    if (spec.qkNorm) {
      out.push({ name: `${p}self_attn.q_norm.weight`, shape: [spec.headDim] });
      out.push({ name: `${p}self_attn.k_norm.weight`, shape: [spec.headDim] });
    }
    out.push({ name: `${p}mlp.gate_proj.weight`, shape: [spec.intermediateSize, h] });
    out.push({ name: `${p}mlp.up_proj.weight`, shape: [spec.intermediateSize, h] });
    out.push({ name: `${p}mlp.down_proj.weight`, shape: [h, spec.intermediateSize] });
    out.push({ name: `${p}input_layernorm.weight`, shape: [h] });
    out.push({ name: `${p}post_attention_layernorm.weight`, shape: [h] });
  }
  out.push({ name: 'model.norm.weight', shape: [h] });
  if (!spec.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [spec.vocabSize, h] });
  return out;
}

/** Parameter count of a spec (what transformers' num_parameters() reports). */
export function parameterCount(spec: ModelSpec): number {
  return expectedTensors(spec).reduce((sum, t) => sum + t.shape.reduce((a, d) => a * d, 1), 0);
}

const LOADABLE_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/** Opens and validates a model folder. */
export async function openModelFolder(folder: string): Promise<ModelFolder> {
  const dir = resolve(folder);
  await requireFolder(dir);
  if (!(await isFile(join(dir, CONFIG_FILE)))) {
    // a run, adapter or Hugging Face cache folder passed by mistake: say what to pass instead
    const instead = await notAModelFolder(dir);
    if (instead) throw new ModelFolderError(instead);
  }
  const config = await readModelConfig(join(dir, CONFIG_FILE));
  const spec = config.spec;

  const { files, weightMap } = await locateWeights(dir);
  const headers = new Map<string, SafetensorsHeader>();
  for (const file of files) headers.set(file, await readSafetensorsHeader(file));

  // Where each tensor lives: from the index when sharded, else the one file.
  const located = new Map<string, { file: string; info: SafetensorsTensorInfo }>();
  for (const [file, header] of headers) {
    for (const info of header.tensors) {
      const owner = weightMap?.get(info.name);
      if (weightMap && owner !== file) continue; // the index decides
      located.set(info.name, { file, info });
    }
  }
  if (weightMap) {
    for (const [name, file] of weightMap) {
      if (!headers.get(file)!.byName.has(name)) {
        throw new ModelFolderError(`${join(dir, WEIGHTS_INDEX_FILE)}: the index says tensor "${name}" is in ${file}, but that file does not contain it. The download is incomplete or mixed from two versions: download the model again.`);
      }
    }
  }

  const weights: WeightRef[] = [];
  const used = new Set<string>();
  const bytesByDType = new Map<DType, number>();
  let weightBytes = 0;
  let quantization: BnbFolderQuantization | null = null;
  for (const expected of expectedTensors(spec)) {
    const found = located.get(expected.name);
    if (!found) {
      const where = weightMap ? `${WEIGHTS_INDEX_FILE} lists no tensor` : `${files[0]} has no tensor`;
      throw new ModelFolderError(`${dir}: ${where} "${expected.name}" (shape [${expected.shape.join(', ')}]), which a ${spec.architecture} with this config.json needs. The download is incomplete or config.json belongs to another model: download the model again.`);
    }
    const { file, info } = found;
    if (config.bnb4 && isBlockLinearWeight(expected.name) && info.dtype === 'U8') {
      // Saved in 4 bits by bitsandbytes: the codes and their companions go to the engine as they are.
      const bnb = await bnbWeightRefs(expected, located, headers, config.bnb4);
      for (const ref of bnb.refs) {
        weights.push(ref);
        used.add(ref.name);
      }
      weightBytes += bnb.bytes;
      quantization ??= bnb.quantization;
      continue;
    }
    if (!sameShape(info.shape, expected.shape)) {
      throw new ModelFolderError(`${file}: tensor "${expected.name}" has shape [${info.shape.join(', ')}] but config.json implies [${expected.shape.join(', ')}]. config.json and the weights belong to different models: download the model again.`);
    }
    if (!LOADABLE_DTYPES.includes(info.dtype)) {
      throw new ModelFolderError(`${file}: tensor "${expected.name}" is stored as ${info.dtype}; only F32, F16 and BF16 weights${config.bnb4 ? ' (and bitsandbytes NF4 linears)' : ''} can be loaded. Use the original (unquantized) model.`);
    }
    const dtype = info.dtype as DType;
    weights.push({ name: expected.name, file, offset: info.offset, dtype, shape: [...info.shape] });
    used.add(expected.name);
    bytesByDType.set(dtype, (bytesByDType.get(dtype) ?? 0) + info.byteLength);
    weightBytes += info.byteLength;
  }
  const unusedTensors = [...located.keys()].filter((n) => !used.has(n)).sort();

  let storedDType: DType = 'F32';
  let most = -1;
  for (const [dtype, bytes] of bytesByDType) {
    if (bytes > most) {
      most = bytes;
      storedDType = dtype;
    }
  }

  return {
    dir,
    config,
    spec,
    weights,
    files,
    parameterCount: parameterCount(spec),
    storedDType,
    weightBytes,
    unusedTensors,
    notices: [...unusedTensorNotices(unusedTensors, spec), ...[await generationConfigProblem(dir)].filter((n) => n !== null)],
    hasTokenizer: await isFile(join(dir, 'tokenizer.json')),
    quantization,
  };
}

async function requireFolder(dir: string): Promise<void> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelFolderError(code === 'ENOENT'
      ? `${dir}: no such folder. Pick the folder that holds the model's config.json and .safetensors files.`
      : `${dir}: cannot read the folder (${code ?? String(err)}). Check its permissions.`);
  }
  if (!info.isDirectory()) {
    throw new ModelFolderError(`${dir}: is a file, not a folder. Pick the folder that holds config.json and the .safetensors files.`);
  }
}

/**
 * The safetensors files of a folder and, when sharded, the tensor -> file map.
 * Like transformers, a single model.safetensors wins over an index.
 */
async function locateWeights(dir: string): Promise<{ files: string[]; weightMap: Map<string, string> | null }> {
  const single = join(dir, SINGLE_WEIGHTS_FILE);
  if (await isFile(single)) return { files: [single], weightMap: null };
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  if (await isFile(indexPath)) {
    let index: unknown;
    try {
      index = JSON.parse(await readFile(indexPath, 'utf8'));
    } catch (err) {
      throw new ModelFolderError(`${indexPath}: cannot be read as JSON (${(err as Error).message}). Download the model again.`);
    }
    const map = (index as { weight_map?: unknown } | null)?.weight_map;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) {
      throw new ModelFolderError(`${indexPath}: has no "weight_map" object. Download the model again.`);
    }
    const weightMap = new Map<string, string>();
    const files: string[] = [];
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== 'string' || shard === '' || shard.includes('/') || shard.includes('\\') || shard === '..' || shard === '.') {
        throw new ModelFolderError(`${indexPath}: "weight_map" entry for "${name}" must be a file name in the same folder (found ${JSON.stringify(shard)}). Download the model again.`);
      }
      const file = join(dir, shard);
      if (!files.includes(file)) files.push(file);
      weightMap.set(name, file);
    }
    for (const file of files) {
      if (!(await isFile(file))) {
        throw new ModelFolderError(`${file}: missing, but ${WEIGHTS_INDEX_FILE} lists it. The download is incomplete: download the missing shard.`);
      }
    }
    files.sort();
    return { files, weightMap };
  }
  const hasBin = (await isFile(join(dir, 'pytorch_model.bin'))) || (await isFile(join(dir, 'pytorch_model.bin.index.json')));
  throw new ModelFolderError(hasBin
    ? `${dir}: has only PyTorch .bin weights; this app reads safetensors. Download the model's .safetensors files (most Hugging Face models have them) or convert the checkpoint to safetensors.`
    : `${dir}: has neither ${SINGLE_WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}. Pick a Hugging Face model folder with safetensors weights.`);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * The stored dtype of the embedding table (and of the lm_head, which a
 * Llama checkpoint stores alike): under 4-bit quantization a 16-bit table
 * stays 16-bit in memory, so the memory estimate needs it.
 */
export function embeddingDType(folder: ModelFolder): 'F32' | 'F16' | 'BF16' {
  const ref = folder.weights.find((w) => w.name === 'model.embed_tokens.weight');
  return ref?.dtype === 'F16' || ref?.dtype === 'BF16' ? ref.dtype : 'F32';
}
