// config.json (Hugging Face transformers) -> ModelSpec.
//
// Defaults are those of the transformers configuration classes (LlamaConfig,
// MistralConfig, Qwen2Config, Qwen3Config) so that a config.json that leaves a
// field out means what it means to transformers. The size fields
// (vocab_size, hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads) are required: their transformers defaults describe a
// 7B model, which is never what a folder without them holds.

import { readFile } from 'node:fs/promises';
import type { DType, ModelSpec, RopeScalingType } from '../engine/native.js';

export const SUPPORTED_ARCHITECTURES = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
] as const;

export type SupportedArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/** config.json's model_type for each architecture (used when "architectures" is missing). */
const MODEL_TYPES: Record<string, SupportedArchitecture> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

/** Per-architecture transformers defaults and structure. */
interface ArchitectureRules {
  maxPositionEmbeddings: number;
  /** head_dim when config.json has none: hidden/heads, or a fixed value (Qwen3Config: 128) */
  defaultHeadDim: 'hidden/heads' | number;
  /** q/k/v biases: always (Qwen2), or read from attention_bias, where true also puts a bias on o_proj */
  qkvBias: 'always' | 'attention_bias';
  qkNorm: boolean;
  /** the architecture reads use_sliding_window (Qwen2/Qwen3) */
  hasUseSlidingWindow: boolean;
}

const RULES: Record<SupportedArchitecture, ArchitectureRules> = {
  LlamaForCausalLM: { maxPositionEmbeddings: 2048, defaultHeadDim: 'hidden/heads', qkvBias: 'attention_bias', qkNorm: false, hasUseSlidingWindow: false },
  MistralForCausalLM: { maxPositionEmbeddings: 4096 * 32, defaultHeadDim: 'hidden/heads', qkvBias: 'attention_bias', qkNorm: false, hasUseSlidingWindow: false },
  Qwen2ForCausalLM: { maxPositionEmbeddings: 32768, defaultHeadDim: 'hidden/heads', qkvBias: 'always', qkNorm: false, hasUseSlidingWindow: true },
  Qwen3ForCausalLM: { maxPositionEmbeddings: 32768, defaultHeadDim: 128, qkvBias: 'attention_bias', qkNorm: true, hasUseSlidingWindow: true },
};

/** Defaults shared by the four configuration classes. */
const DEFAULT_RMS_NORM_EPS = 1e-6;
const DEFAULT_ROPE_THETA = 10000;

export interface ParsedModelConfig {
  spec: ModelSpec;
  /** torch_dtype / dtype of the stored weights, when config.json says and it is one we load */
  storedDType: DType | null;
  /** the raw torch_dtype / dtype string (null when absent) */
  storedDTypeName: string | null;
  /** Mistral's sliding_window (null = full attention); attention beyond it would differ */
  slidingWindow: number | null;
  bosTokenId: number | null;
  /** eos_token_id as a list (config.json allows a number or a list) */
  eosTokenIds: number[];
  /** a checkpoint bitsandbytes saved in 4-bit NF4 (quantization_config), else null */
  bnb4: BnbNf4Config | null;
  /** the parsed JSON, for fields not modelled here */
  raw: Record<string, unknown>;
}

/** config.json's quantization_config of a bitsandbytes 4-bit NF4 checkpoint (transformers load_in_4bit). */
export interface BnbNf4Config {
  quantType: 'nf4';
  doubleQuant: boolean;
  /** bnb_4bit_compute_dtype (PyTorch computes in it; this app computes in fp32) */
  computeDType: string | null;
}

/**
 * Reads quantization_config: a bitsandbytes NF4 checkpoint is loaded as it is;
 * any other quantization (8-bit, FP4, GPTQ, AWQ, ...) gets an error saying what to do.
 */
function bnb4Of(value: unknown, file: string): BnbNf4Config | null {
  if (value === undefined || value === null) return null;
  const field = 'quantization_config';
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ModelConfigError(file, field, 'must be an object', 'Download config.json again.');
  }
  const q = value as Record<string, unknown>;
  const method = q.quant_method;
  if (method !== 'bitsandbytes') {
    throw new ModelConfigError(file, field,
      `the checkpoint is pre-quantized${typeof method === 'string' ? ` (${method})` : ''}, which this app cannot load`,
      'Use the original (unquantized) F32/F16/BF16 model; QLoRA quantizes it on load (--quant nf4, or train --method qlora).');
  }
  if (q.load_in_8bit === true) {
    throw new ModelConfigError(file, field, 'the checkpoint is bitsandbytes 8-bit (load_in_8bit), which this app cannot load',
      'Use the original (unquantized) F32/F16/BF16 model: with --quant nf4 (or train --method qlora) it is quantized to 4-bit NF4 on load.');
  }
  if (q.load_in_4bit !== true) {
    throw new ModelConfigError(file, field, 'is bitsandbytes but neither load_in_4bit nor load_in_8bit is true',
      'Download config.json again, or use the original (unquantized) model.');
  }
  const quantType = q.bnb_4bit_quant_type ?? 'fp4'; // transformers' BitsAndBytesConfig default
  if (quantType !== 'nf4') {
    throw new ModelConfigError(file, 'quantization_config.bnb_4bit_quant_type',
      `is ${JSON.stringify(quantType)}; only bitsandbytes NF4 4-bit checkpoints can be loaded`,
      'Use the original (unquantized) F32/F16/BF16 model: with --quant nf4 (or train --method qlora) it is quantized to NF4 on load.');
  }
  const dq = q.bnb_4bit_use_double_quant ?? false;
  if (typeof dq !== 'boolean') {
    throw new ModelConfigError(file, 'quantization_config.bnb_4bit_use_double_quant', 'must be true or false', 'Download config.json again.');
  }
  const compute = q.bnb_4bit_compute_dtype;
  return { quantType: 'nf4', doubleQuant: dq, computeDType: typeof compute === 'string' ? compute : null };
}

/** The smallest MLP width the engine runs (model/loss_head.cpp keeps its per-row losses, doubles, in the MLP buffer). */
export const MIN_INTERMEDIATE_SIZE = 2;

/** A problem with config.json: names the file and the field. */
export class ModelConfigError extends Error {
  constructor(readonly file: string, readonly field: string | null, problem: string, advice: string) {
    super(`${file}${field === null ? '' : `: field "${field}"`}: ${problem}. ${advice}`);
    this.name = 'ModelConfigError';
  }
}

/** Reads and parses a config.json file. */
export async function readModelConfig(file: string): Promise<ParsedModelConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelConfigError(file, null, code === 'ENOENT' ? 'the file does not exist' : `cannot read the file (${code ?? String(err)})`,
      'A Hugging Face model folder must contain config.json: download the whole model folder.');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(file, null, `is not valid JSON (${(err as Error).message})`, 'Download config.json again.');
  }
  return parseModelConfig(json, file);
}

/** Parses the JSON of a config.json; `file` is only used in error messages. */
export function parseModelConfig(json: unknown, file: string): ParsedModelConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelConfigError(file, null, 'is not a JSON object', 'Download config.json again.');
  }
  const c = json as Record<string, unknown>;
  const fields = new FieldReader(c, file);
  const architecture = architectureOf(c, file);
  const rules = RULES[architecture];

  const bnb4 = bnb4Of(c.quantization_config, file);
  const act = fields.optionalString('hidden_act') ?? 'silu';
  if (act !== 'silu') {
    throw new ModelConfigError(file, 'hidden_act', `is "${act}"; only "silu" (SwiGLU MLP) is supported`, 'Use a model with the standard Llama MLP.');
  }

  const vocabSize = fields.positiveInt('vocab_size');
  const hiddenSize = fields.positiveInt('hidden_size');
  const intermediateSize = fields.positiveInt('intermediate_size');
  if (intermediateSize < MIN_INTERMEDIATE_SIZE) {
    // The engine's loss head keeps its per-row losses in the MLP's buffer; a
    // real model's MLP is hundreds of times wider than this anyway.
    throw new ModelConfigError(file, 'intermediate_size', `is ${intermediateSize}; the engine needs at least ${MIN_INTERMEDIATE_SIZE} (a real model's MLP is far wider)`,
      'config.json is damaged or not the model\'s own: download config.json again.');
  }
  const numLayers = fields.positiveInt('num_hidden_layers');
  const numHeads = fields.positiveInt('num_attention_heads');
  const numKvHeads = fields.optionalPositiveInt('num_key_value_heads') ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(file, 'num_key_value_heads', `${numKvHeads} does not divide num_attention_heads (${numHeads})`,
      'The config is inconsistent: download config.json again.');
  }
  let headDim = fields.optionalPositiveInt('head_dim');
  if (headDim === null) {
    if (rules.defaultHeadDim === 'hidden/heads') {
      if (hiddenSize % numHeads !== 0) {
        throw new ModelConfigError(file, 'hidden_size', `${hiddenSize} is not a multiple of num_attention_heads (${numHeads}) and there is no head_dim`,
          'The config is inconsistent: download config.json again.');
      }
      headDim = hiddenSize / numHeads;
    } else {
      headDim = rules.defaultHeadDim;
    }
  }

  const attentionBiasField = fields.optionalBool('attention_bias') ?? false;
  let attentionBias: boolean;
  if (rules.qkvBias === 'always') {
    attentionBias = true;
  } else {
    if (attentionBiasField) {
      throw new ModelConfigError(file, 'attention_bias',
        `is true, which in ${architecture} also puts a bias on o_proj; that layout is not supported`,
        'Use a model with attention_bias false (all released Llama, Mistral and Qwen3 models).');
    }
    attentionBias = false;
  }
  if (fields.optionalBool('mlp_bias')) {
    throw new ModelConfigError(file, 'mlp_bias', 'is true; MLP biases are not supported', 'Use a model without MLP biases.');
  }
  if (rules.hasUseSlidingWindow && fields.optionalBool('use_sliding_window')) {
    throw new ModelConfigError(file, 'use_sliding_window', 'is true; sliding-window attention is not supported',
      'Use a model with use_sliding_window false.');
  }
  const slidingWindow = architecture === 'MistralForCausalLM' ? fields.optionalPositiveInt('sliding_window') : null;

  const maxPositionEmbeddings = fields.optionalPositiveInt('max_position_embeddings') ?? rules.maxPositionEmbeddings;
  const rmsNormEps = fields.optionalPositiveNumber('rms_norm_eps') ?? DEFAULT_RMS_NORM_EPS;
  const { ropeTheta, ropeScaling } = ropeOf(c, fields, maxPositionEmbeddings, file);
  const tieWordEmbeddings = fields.optionalBool('tie_word_embeddings') ?? false;

  const storedDTypeName = fields.optionalString('torch_dtype') ?? fields.optionalString('dtype');
  const spec: ModelSpec = {
    architecture,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps,
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings,
    tieWordEmbeddings,
    attentionBias,
    qkNorm: rules.qkNorm,
  };
  return {
    spec,
    storedDType: dtypeFromTorchName(storedDTypeName),
    storedDTypeName,
    slidingWindow,
    bosTokenId: fields.optionalNonNegativeInt('bos_token_id'),
    eosTokenIds: eosIdsOf(c.eos_token_id, file),
    bnb4,
    raw: c,
  };
}

/** Maps a torch dtype name ("bfloat16", "torch.float16", ...) to the engine's DType. */
export function dtypeFromTorchName(name: string | null): DType | null {
  if (name === null) return null;
  switch (name.replace(/^torch\./, '')) {
    case 'float32':
    case 'float':
      return 'F32';
    case 'float16':
    case 'half':
      return 'F16';
    case 'bfloat16':
      return 'BF16';
    default:
      return null;
  }
}

function architectureOf(c: Record<string, unknown>, file: string): SupportedArchitecture {
  const supported = `supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`;
  const list = c.architectures;
  if (list !== undefined && list !== null) {
    if (!Array.isArray(list) || list.length === 0 || list.some((a) => typeof a !== 'string')) {
      throw new ModelConfigError(file, 'architectures', 'must be a non-empty list of strings', `Fix config.json (${supported}).`);
    }
    const found = (list as string[]).find((a): a is SupportedArchitecture => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(a));
    if (!found) {
      throw new ModelConfigError(file, 'architectures', `${JSON.stringify(list)} is not supported`, `Choose a model with one of the ${supported}.`);
    }
    return found;
  }
  const modelType = c.model_type;
  if (typeof modelType === 'string' && MODEL_TYPES[modelType]) return MODEL_TYPES[modelType];
  throw new ModelConfigError(file, 'architectures',
    `is missing${typeof modelType === 'string' ? ` and model_type "${modelType}" is not supported` : ' (and so is model_type)'}`,
    `Choose a model with one of the ${supported}.`);
}

/**
 * RoPE base and scaling. Older files put the scaling in "rope_scaling" with a
 * "type" or "rope_type" key; transformers v5 writes "rope_parameters", which
 * also holds rope_theta.
 */
function ropeOf(c: Record<string, unknown>, fields: FieldReader, maxPositionEmbeddings: number, file: string): { ropeTheta: number; ropeScaling: ModelSpec['ropeScaling'] } {
  let field = 'rope_scaling';
  let params = c.rope_scaling;
  if ((params === undefined || params === null) && c.rope_parameters !== undefined && c.rope_parameters !== null) {
    field = 'rope_parameters';
    params = c.rope_parameters;
  }
  let ropeTheta = fields.optionalPositiveNumber('rope_theta');
  const none = { type: 'none' as RopeScalingType, factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: maxPositionEmbeddings };
  if (params === undefined || params === null) return { ropeTheta: ropeTheta ?? DEFAULT_ROPE_THETA, ropeScaling: none };
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw new ModelConfigError(file, field, 'must be an object or null', 'Fix config.json.');
  }
  const p = new FieldReader(params as Record<string, unknown>, file, `${field}.`);
  if (field === 'rope_parameters') ropeTheta = p.optionalPositiveNumber('rope_theta') ?? ropeTheta;
  const typeName = p.optionalString('rope_type') ?? p.optionalString('type') ?? 'default';
  ropeTheta ??= DEFAULT_ROPE_THETA;
  switch (typeName) {
    case 'default':
      return { ropeTheta, ropeScaling: none };
    case 'linear':
      // Positions are divided by `factor`; the llama3 fields do not apply.
      return { ropeTheta, ropeScaling: { ...none, type: 'linear', factor: p.positiveNumber('factor') } };
    case 'llama3':
      return {
        ropeTheta,
        ropeScaling: {
          type: 'llama3',
          factor: p.positiveNumber('factor'),
          lowFreqFactor: p.positiveNumber('low_freq_factor'),
          highFreqFactor: p.positiveNumber('high_freq_factor'),
          originalMaxPosition: p.positiveInt('original_max_position_embeddings'),
        },
      };
    default:
      throw new ModelConfigError(file, `${field}.rope_type`, `"${typeName}" RoPE scaling is not supported (supported: default, linear, llama3)`,
        'Use a model with one of the supported RoPE scalings.');
  }
}

function eosIdsOf(value: unknown, file: string): number[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.some((v) => !Number.isInteger(v) || (v as number) < 0)) {
    throw new ModelConfigError(file, 'eos_token_id', 'must be a non-negative integer or a list of them', 'Fix config.json.');
  }
  return list as number[];
}

/** Typed access to JSON fields with errors naming the field and file. */
class FieldReader {
  constructor(private readonly obj: Record<string, unknown>, private readonly file: string, private readonly prefix = '') {}

  private fail(key: string, expected: string): never {
    throw new ModelConfigError(this.file, this.prefix + key, `must be ${expected} (found ${JSON.stringify(this.obj[key]) ?? 'nothing'})`,
      'Fix config.json or download it again.');
  }

  private missing(key: string): never {
    throw new ModelConfigError(this.file, this.prefix + key, 'is missing', 'config.json is incomplete: download it again.');
  }

  private present(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  positiveInt(key: string): number {
    return this.optionalPositiveInt(key) ?? this.missing(key);
  }

  optionalPositiveInt(key: string): number | null {
    if (!this.present(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(key, 'a positive integer');
    return v as number;
  }

  optionalNonNegativeInt(key: string): number | null {
    if (!this.present(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(key, 'a non-negative integer');
    return v as number;
  }

  positiveNumber(key: string): number {
    return this.optionalPositiveNumber(key) ?? this.missing(key);
  }

  optionalPositiveNumber(key: string): number | null {
    if (!this.present(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(key, 'a positive number');
    return v as number;
  }

  optionalBool(key: string): boolean | null {
    if (!this.present(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v as boolean;
  }

  optionalString(key: string): string | null {
    if (!this.present(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v as string;
  }
}
