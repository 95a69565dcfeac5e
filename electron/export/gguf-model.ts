// A whole Hugging Face model folder (Llama, Mistral, Qwen2, Qwen3) as one GGUF
// file llama.cpp loads (llama-cli -m, Ollama FROM), laid out as llama.cpp's
// convert_hf_to_gguf.py writes it:
//   metadata   general.*, {arch}.* hyperparameters, the tokenizer (gguf-vocab.ts)
//   tensors    token_embd, output_norm, output (absent with tied embeddings: llama.cpp
//              then reuses token_embd), blk.N.{attn_norm, attn_q, attn_k, attn_v,
//              attn_output, attn_q_norm, attn_k_norm, ffn_norm, ffn_gate, ffn_up,
//              ffn_down}.weight, blk.N.attn_{q,k,v}.bias (Qwen2), rope_freqs.weight
//              (Llama 3 RoPE scaling)
//   types      1-D tensors and norms stay F32 (the converter keeps them so); matrices
//              in the chosen type; for q8_0 a matrix whose rows are not whole 32-value
//              blocks falls back to F16, as the converter does
//   llama      q/k rows permuted for llama.cpp's interleaved RoPE (rope-permute.ts)
// Tensors are read, converted and written one at a time, so converting a model
// needs memory for its largest tensor, not for the model.
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DType, ModelSpec, WeightRef } from '../engine/native.js';
import { expectedTensors, openModelFolder, type ModelFolder } from '../models/folder.js';
import { decodeFloatTensor, encodeFloatTensor, f16ToF32, f32ToF16, f32ToF16Bits } from '../safetensors/convert.js';
import { GgmlType, GgufValueType, quantizeQ8_0, Q8_0_BLOCK, type GgufKv, type GgufTensorToWrite } from './gguf/format.js';
import { writeGguf } from './gguf/write.js';
import { llamaCppArchitecture, permutesQueryKey } from './gguf-lora.js';
import { ggufVocab, type GgufVocab } from './gguf-vocab.js';
import { gatherRows, ropeRowOrder } from './rope-permute.js';


export const GGUF_MODEL_TYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type GgufModelType = (typeof GGUF_MODEL_TYPES)[number];

/** general.file_type (llama_ftype): ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32. */
const FILE_TYPE: Record<GgufModelType, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };
const MATRIX_TYPE: Record<GgufModelType, GgmlType> = { f32: GgmlType.F32, f16: GgmlType.F16, bf16: GgmlType.BF16, q8_0: GgmlType.Q8_0 };
/** gguf-py GGML_QUANT_VERSION, which the converter writes into every file. */
const GGML_QUANT_VERSION = 2;

export class GgufModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufModelError';
  }
}

/**
 * The type the converter's default ("--outtype auto") picks: the model's own
 * 16-bit type (BF16 -> bf16, F16 -> f16), so a 16-bit model's weights pass
 * unchanged, and f16 for an F32 model (the converter falls back to f16 when no
 * matrix is 16-bit: half the file, and the type llama.cpp's backends run
 * fastest). A full fine-tuning run is saved in F32, so it gets f16 too; pass
 * f32 to keep its weights bit for bit (the check then allows 1e-6, not 1e-3).
 */
export function defaultGgufModelType(storedDType: DType): GgufModelType {
  return storedDType === 'BF16' ? 'bf16' : 'f16';
}

/** llama.cpp's name for a Hugging Face tensor name (LLM_TENSOR_NAMES in llama-arch.cpp). */
export function ggufModelTensorName(hfName: string): string {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (fixed[hfName]) return fixed[hfName];
  const m = /^model\.layers\.(\d+)\.(self_attn|mlp)?\.?([a-z_]+)\.(weight|bias)$/.exec(hfName);
  const inLayer: Record<string, string> = {
    q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output',
    q_norm: 'attn_q_norm', k_norm: 'attn_k_norm',
    gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down',
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
  };
  if (!m || !inLayer[m[3]]) throw new Error(`internal: no GGUF name for tensor ${hfName}`);
  return `blk.${m[1]}.${inLayer[m[3]]}.${m[4]}`;
}

/** The q/k row order llama.cpp needs for this tensor (of a model of llama.cpp architecture `arch`), or null. */
export function ggufRowOrder(spec: ModelSpec, arch: string, hfName: string): Int32Array | null {
  if (!permutesQueryKey(arch)) return null;
  if (/\.q_proj\.(weight|bias)$/.test(hfName)) return ropeRowOrder(spec.numHeads, spec.headDim);
  if (/\.k_proj\.(weight|bias)$/.test(hfName)) return ropeRowOrder(spec.numKvHeads, spec.headDim);
  return null;
}

/** The GGUF type of a tensor: 1-D and norms F32; matrices the chosen type (Q8_0 needs whole blocks per row). */
export function ggufTensorType(ggufName: string, dims: readonly number[], type: GgufModelType): GgmlType {
  if (dims.length <= 1 || ggufName.endsWith('_norm.weight') || !ggufName.endsWith('.weight')) return GgmlType.F32;
  const t = MATRIX_TYPE[type];
  if (t === GgmlType.Q8_0 && dims[0] % Q8_0_BLOCK !== 0) return GgmlType.F16;
  return t;
}

/**
 * rope_freqs.weight for Llama 3 RoPE scaling, the per-frequency divisors as
 * LlamaModel.generate_extra_tensors computes them:
 *   freq_i = 1 / base^(2i / dim); wavelen = 2π / freq
 *   wavelen < orig / high_freq_factor -> 1; wavelen > orig / low_freq_factor -> factor
 *   else 1 / ((1 - smooth) / factor + smooth), smooth = (orig / wavelen - low) / (high - low)
 * The converter runs this on float32 torch tensors: every Python number meeting
 * a tensor is first rounded to float32 and every operation rounds to float32,
 * which f() reproduces step by step.
 */
export function llama3RopeFactors(spec: ModelSpec): Float32Array {
  const f = Math.fround;
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPosition: orig } = spec.ropeScaling;
  const dim = spec.headDim;
  const lowWavelen = f(orig / low);
  const highWavelen = f(orig / high);
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = f(1 / f(f(spec.ropeTheta) ** f(i * 2 / dim)));
    const wavelen = f(f(2 * Math.PI) / freq);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = f(f(f(f(orig) / wavelen) - f(low)) / f(high - low));
      out[i] = f(1 / f(f(f(1 - smooth) / f(factor)) + smooth));
    }
  }
  return out;
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Float32 values in a GGUF tensor type; F16 refuses values beyond its range (an export with f32 or bf16 keeps them). */
function encodeAs(values: Float32Array, type: GgmlType, name: string): Uint8Array {
  switch (type) {
    case GgmlType.F32: return bytesOf(values);
    case GgmlType.BF16: return encodeFloatTensor(values, 'BF16');
    case GgmlType.F16: {
      const half = f32ToF16(values);
      const back = f16ToF32(half);
      for (let i = 0; i < back.length; i++) {
        if (!Number.isFinite(back[i]) && Number.isFinite(values[i])) {
          throw new GgufModelError(`tensor ${name}[${i}] = ${values[i]} does not fit float16 (largest 65504); export with the GGUF type bf16 (--gguf-type bf16) or f32 (--gguf-type f32), which hold it`);
        }
      }
      return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
    }
    case GgmlType.Q8_0: return quantizeQ8_0(values, f32ToF16Bits);
  }
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** One weight of the folder as float32, read from its file now. */
async function readWeight(ref: WeightRef): Promise<Float32Array> {
  const elements = ref.shape.reduce((a, d) => a * d, 1);
  const bytes = new Uint8Array(elements * DTYPE_BYTES[ref.dtype]);
  const handle = await open(ref.file, 'r');
  try {
    for (let done = 0; done < bytes.length;) {
      const { bytesRead } = await handle.read(bytes, done, Math.min(64 * 1024 * 1024, bytes.length - done), ref.offset + done);
      if (bytesRead === 0) throw new GgufModelError(`${ref.file}: ends inside tensor "${ref.name}"; the file is truncated: download the model again`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return decodeFloatTensor(bytes, ref.dtype as 'F32' | 'F16' | 'BF16');
}

export interface GgufModelTensor {
  name: string;
  /** GGUF ne[], innermost first */
  dims: number[];
  type: GgmlType;
}

export interface GgufModelContent {
  architecture: 'llama' | 'qwen2' | 'qwen3';
  type: GgufModelType;
  kvs: GgufKv[];
  tensors: GgufTensorToWrite[];
  vocab: GgufVocab;
}

/** The tokenizer.* metadata of a model of llama.cpp architecture `arch` (the reload check expects exactly these). */
export function ggufTokenizerKvs(arch: string, vocab: GgufVocab): GgufKv[] {
  // LlamaModel.set_vocab writes tokenizer_config.json's add_prefix_space before the vocabulary;
  // a SentencePiece-style vocabulary always says it (llama.cpp's SPM default, true, may be wrong)
  const prefix: GgufKv[] = (arch === 'llama' || vocab.model === 'llama') && vocab.addSpacePrefix !== null ? [{ key: 'tokenizer.ggml.add_space_prefix', type: GgufValueType.BOOL, value: vocab.addSpacePrefix }] : [];
  return [...prefix, ...vocab.kvs];
}

function f32kv(key: string, value: number): GgufKv {
  return { key, type: GgufValueType.FLOAT32, value };
}
function u32kv(key: string, value: number): GgufKv {
  return { key, type: GgufValueType.UINT32, value };
}

/**
 * The llama.cpp architecture of the model in `dir`, or a GgufModelError
 * saying why llama.cpp cannot run it as converted: an architecture it does not
 * map, llama3 RoPE scaling outside `llama`. (The tokenizer's checks are
 * ggufVocab's.) Cheap: export asks it before any work.
 */
export function ggufModelArchitecture(spec: ModelSpec, dir: string): 'llama' | 'qwen2' | 'qwen3' {
  let architecture: 'llama' | 'qwen2' | 'qwen3';
  try {
    architecture = llamaCppArchitecture(spec);
  } catch (err) {
    throw new GgufModelError(`${dir}: ${(err as Error).message.replace('a GGUF adapter', 'a GGUF model')}`);
  }
  if (spec.ropeScaling.type === 'llama3' && architecture !== 'llama') {
    throw new GgufModelError(`${join(dir, 'config.json')}: llama3 RoPE scaling on ${spec.architecture}: llama.cpp applies it (rope_freqs) only to the llama architecture`);
  }
  return architecture;
}

/**
 * The metadata and (lazily read) tensors of a model folder's GGUF. `vocab`:
 * its tokenizer as ggufVocab builds it, when the caller already has that
 * (export builds it to refuse early); else it is built here.
 */
export async function ggufModelContent(folder: ModelFolder, options: { type?: GgufModelType; name?: string; vocab?: GgufVocab }): Promise<GgufModelContent> {
  const { spec } = folder;
  if (folder.quantization !== null || folder.config.bnb4 !== null) {
    throw new GgufModelError(`${folder.dir}: is saved in 4-bit by bitsandbytes; a GGUF model is converted from 16- or 32-bit weights (GGUF has no NF4 type). Use the original (unquantized) model folder`);
  }
  const architecture = ggufModelArchitecture(spec, folder.dir);
  const type = options.type ?? defaultGgufModelType(folder.storedDType);
  const a = architecture;
  const raw = folder.config.raw;
  const kvs: GgufKv[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: a },
    { key: 'general.type', type: GgufValueType.STRING, value: 'model' },
    { key: 'general.name', type: GgufValueType.STRING, value: options.name ?? basename(folder.dir) },
    u32kv(`${a}.block_count`, spec.numLayers),
    u32kv(`${a}.context_length`, spec.maxPositionEmbeddings),
    u32kv(`${a}.embedding_length`, spec.hiddenSize),
    u32kv(`${a}.feed_forward_length`, spec.intermediateSize),
    u32kv(`${a}.attention.head_count`, spec.numHeads),
    u32kv(`${a}.attention.head_count_kv`, spec.numKvHeads),
    f32kv(`${a}.rope.freq_base`, spec.ropeTheta),
    f32kv(`${a}.attention.layer_norm_rms_epsilon`, spec.rmsNormEps),
  ];
  // The converter writes key/value_length when config.json has head_dim; llama.cpp's
  // default (n_embd / n_head) is wrong whenever they differ (Qwen3's default 128), so write it then too.
  if (typeof raw.head_dim === 'number' || spec.headDim * spec.numHeads !== spec.hiddenSize) {
    kvs.push(u32kv(`${a}.attention.key_length`, spec.headDim), u32kv(`${a}.attention.value_length`, spec.headDim));
  }
  if (spec.ropeScaling.type === 'linear') {
    kvs.push({ key: `${a}.rope.scaling.type`, type: GgufValueType.STRING, value: 'linear' }, f32kv(`${a}.rope.scaling.factor`, spec.ropeScaling.factor));
  }
  kvs.push(u32kv('general.file_type', FILE_TYPE[type]));
  if (a === 'llama') kvs.push(u32kv(`${a}.vocab_size`, spec.vocabSize), u32kv(`${a}.rope.dimension_count`, spec.headDim));
  kvs.push(u32kv('general.quantization_version', GGML_QUANT_VERSION));

  const vocab = options.vocab ?? (await ggufVocab(folder.dir, spec.vocabSize));
  kvs.push(...ggufTokenizerKvs(a, vocab));

  const tensors: GgufTensorToWrite[] = [];
  if (spec.ropeScaling.type === 'llama3') {
    const factors = llama3RopeFactors(spec);
    tensors.push({ name: 'rope_freqs.weight', dims: [factors.length], type: GgmlType.F32, data: bytesOf(factors) });
  }
  const refs = new Map(folder.weights.map((w) => [w.name, w]));
  for (const { name: hfName, shape } of expectedTensors(spec)) {
    const ref = refs.get(hfName)!;
    const name = ggufModelTensorName(hfName);
    const dims = [...shape].reverse();
    const ggmlType = ggufTensorType(name, dims, type);
    const order = ggufRowOrder(spec, architecture, hfName);
    tensors.push({
      name,
      dims,
      type: ggmlType,
      data: async () => {
        let values = await readWeight(ref);
        if (order) values = gatherRows(values, shape.length === 1 ? 1 : shape[1], order);
        return encodeAs(values, ggmlType, name);
      },
    });
  }
  return { architecture, type, kvs, tensors, vocab };
}

export interface GgufModelSummary {
  file: string;
  architecture: 'llama' | 'qwen2' | 'qwen3';
  type: GgufModelType;
  tensors: GgufModelTensor[];
  fileBytes: number;
  /** tokenizer.ggml.pre and the token / merge counts */
  pre: string;
  /** the tokenizer in words for the log: "SentencePiece-style BPE" or "byte-level BPE, pre-tokenizer llama-bpe" */
  tokenizer: string;
  tokens: number;
  merges: number;
  /** the file holds tokenizer.chat_template */
  chatTemplate: boolean;
}

/**
 * Converts a Hugging Face model folder to one GGUF file (atomically).
 * `type` defaults to the converter's "auto" (defaultGgufModelType); `vocab`,
 * the folder's tokenizer already built by ggufVocab, saves building it again.
 */
export async function writeGgufModel(options: { modelDir: string; outFile: string; type?: GgufModelType; name?: string; vocab?: GgufVocab }): Promise<GgufModelSummary> {
  const folder = await openModelFolder(options.modelDir);
  const content = await ggufModelContent(folder, options);
  const layout = await writeGguf(options.outFile, content.kvs, content.tensors);
  return {
    file: options.outFile,
    architecture: content.architecture,
    type: content.type,
    tensors: content.tensors.map(({ name, dims, type }) => ({ name, dims, type })),
    fileBytes: layout.fileBytes,
    pre: content.vocab.pre,
    tokenizer: content.vocab.model === 'llama' ? 'SentencePiece-style BPE' : `byte-level BPE, pre-tokenizer ${content.vocab.pre}`,
    tokens: content.vocab.tokens.length,
    merges: content.vocab.merges.length,
    chatTemplate: content.vocab.chatTemplate !== null,
  };
}
