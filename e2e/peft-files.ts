// An independent check of an exported PEFT LoRA folder, written for the
// tests from the formats' specifications (not with the app's own reader, so
// a bug shared by the app's writer and reader cannot hide here):
// - adapter_config.json: PEFT's LoraConfig as JSON;
// - adapter_model.safetensors: an 8-byte little-endian header length, a JSON
//   header {name: {dtype, shape, data_offsets}}, then the tensor bytes;
// - tensor names as PEFT saves them for a LlamaForCausalLM:
//   base_model.model.model.layers.N.<self_attn|mlp>.<module>.lora_<A|B>.weight
//   with lora_A [r, in_features] and lora_B [out_features, r].
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  /** byte offset of the data section in the file */
  dataStart: number;
  bytes: Buffer;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Reads a .safetensors file and checks that the header describes the data exactly. */
export function readSafetensors(file: string): SafetensorsFile {
  const bytes = readFileSync(file);
  if (bytes.length < 8) throw new Error(`${file}: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (8 + headerLength > bytes.length) throw new Error(`${file}: header length ${headerLength} runs past the end of the file`);
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  const tensors = new Map<string, SafetensorsEntry>();
  let covered = 0;
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = value as SafetensorsEntry;
    const width = DTYPE_BYTES[entry.dtype];
    if (!width) throw new Error(`${file}: ${name} has dtype ${entry.dtype}, not a float type`);
    const [begin, end] = entry.data_offsets;
    const elements = entry.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== elements * width) throw new Error(`${file}: ${name} spans ${end - begin} bytes for ${elements} ${entry.dtype} values`);
    covered += end - begin;
    tensors.set(name, entry);
  }
  const dataStart = 8 + headerLength;
  if (covered !== bytes.length - dataStart) throw new Error(`${file}: tensors cover ${covered} bytes of a ${bytes.length - dataStart}-byte data section`);
  return { tensors, dataStart, bytes };
}

/** Whether a tensor holds at least one non-zero value (a trained lora_B does; a fresh one is all zeros). */
export function hasNonZero(file: SafetensorsFile, name: string): boolean {
  const entry = file.tensors.get(name);
  if (!entry) throw new Error(`no tensor ${name}`);
  const [begin, end] = entry.data_offsets;
  const data = file.bytes.subarray(file.dataStart + begin, file.dataStart + end);
  const width = DTYPE_BYTES[entry.dtype];
  for (let i = 0; i < data.length; i += width) {
    // +0 and -0 are the only zero encodings: all bits but the sign bit clear
    let bits = 0;
    for (let b = 0; b < width; b++) bits |= data[i + b] & (b === width - 1 ? 0x7f : 0xff);
    if (bits !== 0) return true;
  }
  return false;
}

export interface LlamaConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
}

export function readModelConfig(modelDir: string): LlamaConfig {
  return JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as LlamaConfig;
}

/** [in_features, out_features] of a Llama decoder module, from config.json. */
export function moduleShape(module: string, c: LlamaConfig): { block: 'self_attn' | 'mlp'; inFeatures: number; outFeatures: number } {
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  switch (module) {
    case 'q_proj':
      return { block: 'self_attn', inFeatures: c.hidden_size, outFeatures: c.num_attention_heads * headDim };
    case 'k_proj':
    case 'v_proj':
      return { block: 'self_attn', inFeatures: c.hidden_size, outFeatures: c.num_key_value_heads * headDim };
    case 'o_proj':
      return { block: 'self_attn', inFeatures: c.num_attention_heads * headDim, outFeatures: c.hidden_size };
    case 'gate_proj':
    case 'up_proj':
      return { block: 'mlp', inFeatures: c.hidden_size, outFeatures: c.intermediate_size };
    case 'down_proj':
      return { block: 'mlp', inFeatures: c.intermediate_size, outFeatures: c.hidden_size };
    default:
      throw new Error(`unknown Llama module ${module}`);
  }
}

/** The tensors PEFT saves for a LoRA on these modules of every layer, with their shapes. */
export function expectedLoraTensors(c: LlamaConfig, rank: number, targets: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let layer = 0; layer < c.num_hidden_layers; layer++) {
    for (const module of targets) {
      const { block, inFeatures, outFeatures } = moduleShape(module, c);
      const prefix = `base_model.model.model.layers.${layer}.${block}.${module}`;
      out.set(`${prefix}.lora_A.weight`, [rank, inFeatures]);
      out.set(`${prefix}.lora_B.weight`, [outFeatures, rank]);
    }
  }
  return out;
}

/** stat size, for the report */
export function fileBytes(file: string): number {
  return statSync(file).size;
}
