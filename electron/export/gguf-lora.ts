// LoRA adapters as GGUF files that llama.cpp (llama_adapter_lora_init) and
// Ollama (ADAPTER in a Modelfile) load, laid out as llama.cpp's own
// convert_lora_to_gguf.py writes them:
//   general.architecture  "llama" (Llama, Mistral), "qwen2", "qwen3"
//   general.type          "adapter"
//   adapter.type          "lora"
//   adapter.lora.alpha    float32; llama.cpp scales by alpha / r, r = lora_b ne[0]
//   tensors  blk.{i}.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight.lora_{a,b}
//            lora_a is PEFT's lora_A [r, in]  -> GGUF ne = [in, r]
//            lora_b is PEFT's lora_B [out, r] -> GGUF ne = [r, out]
//            (the row-major bytes are the same; GGUF lists dims innermost first)
//   For the llama architecture, lora_b of q and k carries llama.cpp's RoPE
//   row permutation (rope-permute.ts).
// rsLoRA: llama.cpp (and its converter) know only alpha / r, so an rsLoRA
// adapter (scaling alpha / sqrt(r)) is written with alpha * sqrt(r), which
// gives llama.cpp the same scaling.
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { projectionSize, type LoraTensor } from '../adapters/peft.js';
import { LORA_TARGETS, loraScaling, type AdapterLora } from '../adapters/peft-config.js';
import { f16ToF32, f32ToF16 } from '../safetensors/convert.js';
import { GGUF_DEFAULT_ALIGNMENT, GgmlType, GgufValueType, type GgufKv, type GgufTensorToWrite } from './gguf/format.js';
import { GgufFormatError, metadataValue, readGguf, tensorAsFloat32 } from './gguf/read.js';
import { writeGguf } from './gguf/write.js';
import { gatherRows, ropeRowOrder, scatterRows } from './rope-permute.js';

export type GgufTensorType = 'f32' | 'f16';

/** llama.cpp's name for each LoRA target's base weight (LLM_TENSOR_* in llama-arch.cpp). */
const GGUF_MODULE: Record<LoraTarget, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

/** How the converter maps Hugging Face architectures (convert_hf_to_gguf.py ModelBase.register). */
const LLAMA_CPP_ARCH: Record<string, 'llama' | 'qwen2' | 'qwen3'> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

export function llamaCppArchitecture(spec: ModelSpec): 'llama' | 'qwen2' | 'qwen3' {
  const arch = LLAMA_CPP_ARCH[spec.architecture];
  if (!arch) throw new Error(`cannot export a GGUF adapter for ${spec.architecture}: only ${Object.keys(LLAMA_CPP_ARCH).join(', ')} are mapped to llama.cpp architectures`);
  return arch;
}

/** Whether llama.cpp runs this architecture with interleaved ("normal") RoPE, so q/k rows are permuted. */
export function permutesQueryKey(arch: string): boolean {
  return arch === 'llama';
}

/** The alpha llama.cpp needs for the adapter's scaling (alpha / r there). */
export function llamaCppAlpha(lora: Pick<AdapterLora, 'alpha' | 'rank' | 'rslora'>): number {
  return lora.rslora ? lora.alpha * Math.sqrt(lora.rank) : lora.alpha;
}

interface ParsedEngineName {
  layer: number;
  target: LoraTarget;
  which: 'A' | 'B';
}

const ENGINE_NAME = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.([a-z_]+)\.lora_([AB])\.weight$/;

function parseEngineName(name: string): ParsedEngineName {
  const m = ENGINE_NAME.exec(name);
  if (!m || !LORA_TARGETS.includes(m[2] as LoraTarget)) throw new Error(`internal: unexpected LoRA tensor name ${name}`);
  return { layer: Number(m[1]), target: m[2] as LoraTarget, which: m[3] as 'A' | 'B' };
}

/** model.layers.3.self_attn.q_proj.lora_A.weight -> blk.3.attn_q.weight.lora_a */
export function ggufLoraTensorName(engineName: string): string {
  const { layer, target, which } = parseEngineName(engineName);
  return `blk.${layer}.${GGUF_MODULE[target]}.weight.lora_${which === 'A' ? 'a' : 'b'}`;
}

const GGUF_NAME = /^blk\.(\d+)\.([a-z_]+)\.weight\.lora_([ab])$/;

function engineNameFromGguf(name: string): ParsedEngineName | null {
  const m = GGUF_NAME.exec(name);
  if (!m) return null;
  const target = (Object.keys(GGUF_MODULE) as LoraTarget[]).find((t) => GGUF_MODULE[t] === m[2]);
  if (!target) return null;
  return { layer: Number(m[1]), target, which: m[3] === 'a' ? 'A' : 'B' };
}

function engineName(p: Pick<ParsedEngineName, 'layer' | 'target'>, which: 'A' | 'B'): string {
  const block = p.target === 'gate_proj' || p.target === 'up_proj' || p.target === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${p.layer}.${block}.${p.target}.lora_${which}.weight`;
}

/** RoPE row order for a target's output rows, or null when llama.cpp does not permute it. */
function rowOrderFor(spec: ModelSpec, arch: string, target: LoraTarget): Int32Array | null {
  if (!permutesQueryKey(arch)) return null;
  if (target === 'q_proj') return ropeRowOrder(spec.numHeads, spec.headDim);
  if (target === 'k_proj') return ropeRowOrder(spec.numKvHeads, spec.headDim);
  return null;
}

function encode(values: Float32Array, type: GgufTensorType, name: string): { type: GgmlType; data: Uint8Array } {
  if (type === 'f32') return { type: GgmlType.F32, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  const half = f32ToF16(values);
  const back = f16ToF32(half);
  for (let i = 0; i < back.length; i++) {
    if (!Number.isFinite(back[i])) {
      throw new Error(`tensor ${name}[${i}] = ${values[i]} does not fit float16 (largest 65504); export with the GGUF type f32 (--gguf-type f32)`);
    }
  }
  return { type: GgmlType.F16, data: new Uint8Array(half.buffer, half.byteOffset, half.byteLength) };
}

export interface GgufLoraContent {
  kvs: GgufKv[];
  tensors: GgufTensorToWrite[];
  architecture: string;
  alpha: number;
}

/** The metadata and tensors of a GGUF LoRA adapter for these engine-named tensors. */
export function ggufLoraContent(options: { spec: ModelSpec; lora: AdapterLora; tensors: readonly LoraTensor[]; type: GgufTensorType; name: string }): GgufLoraContent {
  const { spec, lora, type } = options;
  // export.ts refuses DoRA before any work (doraGgufMessage); this keeps a magnitude from being dropped silently
  if (lora.dora === true) throw new Error('a DoRA adapter cannot be written as a GGUF adapter: llama.cpp applies LoRA factors only (export it as gguf-model or merged)');
  const architecture = llamaCppArchitecture(spec);
  const alpha = llamaCppAlpha(lora);
  const kvs: GgufKv[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: architecture },
    { key: 'general.type', type: GgufValueType.STRING, value: 'adapter' },
    { key: 'general.name', type: GgufValueType.STRING, value: options.name },
    { key: 'general.alignment', type: GgufValueType.UINT32, value: GGUF_DEFAULT_ALIGNMENT },
    // llama_ftype: 0 = all F32, 1 = mostly F16
    { key: 'general.file_type', type: GgufValueType.UINT32, value: type === 'f32' ? 0 : 1 },
    { key: 'adapter.type', type: GgufValueType.STRING, value: 'lora' },
    { key: 'adapter.lora.alpha', type: GgufValueType.FLOAT32, value: alpha },
  ];
  const tensors: GgufTensorToWrite[] = options.tensors.map((t) => {
    const { target, which } = parseEngineName(t.name);
    const [rows, cols] = t.shape;
    const order = which === 'B' ? rowOrderFor(spec, architecture, target) : null;
    const values = order ? gatherRows(t.data, cols, order) : t.data;
    const name = ggufLoraTensorName(t.name);
    return { name, dims: [cols, rows], ...encode(values, type, name) };
  });
  return { kvs, tensors, architecture, alpha };
}

/** Writes a GGUF LoRA adapter file (atomically). */
export async function writeGgufLoraAdapter(file: string, options: Parameters<typeof ggufLoraContent>[0]): Promise<GgufLoraContent> {
  const content = ggufLoraContent(options);
  await writeGguf(file, content.kvs, content.tensors);
  return content;
}

export interface GgufLoraAdapter {
  file: string;
  architecture: string;
  /** adapter.lora.alpha as stored */
  alpha: number;
  /** the layout for the engine: alpha as llama.cpp applies it, rsLoRA folded in */
  lora: AdapterLora;
  scaling: number;
  /** engine-named tensors with the q/k permutation undone, in float32 */
  tensors: LoraTensor[];
}

/**
 * Reads a GGUF LoRA adapter for a model with this spec, checking what
 * llama.cpp checks (general.type, adapter.type, architecture, shapes) and
 * what the engine needs (one rank, the same targets in every adapted layer).
 */
export async function readGgufLoraAdapter(file: string, spec: ModelSpec): Promise<GgufLoraAdapter> {
  const gguf = await readGguf(file);
  const fail = (problem: string) => new GgufFormatError(file, problem);
  const generalType = metadataValue(gguf, 'general.type', GgufValueType.STRING);
  if (generalType !== 'adapter') throw fail(`general.type is "${String(generalType)}", not "adapter"; this is a model, not an adapter`);
  const adapterType = metadataValue(gguf, 'adapter.type', GgufValueType.STRING);
  if (adapterType !== 'lora') throw fail(`adapter.type is "${String(adapterType)}"; only "lora" adapters are supported`);
  const architecture = String(metadataValue(gguf, 'general.architecture', GgufValueType.STRING));
  const expected = llamaCppArchitecture(spec);
  if (architecture !== expected) throw fail(`is an adapter for llama.cpp architecture "${architecture}", but the model (${spec.architecture}) is "${expected}"; use the base model the adapter was made for`);
  // llama.cpp reads a missing alpha as 0, and alpha 0 as "scale 1" (no alpha / r).
  const storedAlpha = gguf.metadata.has('adapter.lora.alpha') ? Number(metadataValue(gguf, 'adapter.lora.alpha', GgufValueType.FLOAT32)) : 0;

  const pairs = new Map<string, { layer: number; target: LoraTarget; A?: (typeof gguf.tensors)[number]; B?: (typeof gguf.tensors)[number] }>();
  for (const info of gguf.tensors) {
    const parsed = engineNameFromGguf(info.name);
    if (!parsed) throw fail(`holds tensor "${info.name}", which is not a LoRA factor of an attention or MLP projection (embedding, output and norm tensors are not supported)`);
    if (parsed.layer >= spec.numLayers) throw fail(`tensor "${info.name}" is for layer ${parsed.layer}, but the model has layers 0..${spec.numLayers - 1}; use the base model the adapter was made for`);
    const key = `${parsed.layer}.${parsed.target}`;
    const pair = pairs.get(key) ?? { layer: parsed.layer, target: parsed.target };
    pair[parsed.which] = info;
    pairs.set(key, pair);
  }
  if (pairs.size === 0) throw fail('holds no LoRA tensors');

  let rank = -1;
  const targetsByLayer = new Map<number, Set<LoraTarget>>();
  for (const pair of pairs.values()) {
    const label = `blk.${pair.layer}.${GGUF_MODULE[pair.target]}.weight`;
    if (!pair.A || !pair.B) throw fail(`LoRA pair "${label}" is missing its lora_${pair.A ? 'b' : 'a'} tensor`);
    const [inF, outF] = projectionSize(spec, pair.target);
    if (pair.A.dims.length !== 2 || pair.B.dims.length !== 2 || pair.A.dims[0] !== inF || pair.B.dims[1] !== outF) {
      throw fail(`"${label}" has lora_a [${pair.A.dims.join(', ')}] and lora_b [${pair.B.dims.join(', ')}] (GGUF order), but the model needs [${inF}, r] and [r, ${outF}]; use the base model the adapter was made for`);
    }
    if (pair.A.dims[1] !== pair.B.dims[0]) throw fail(`"${label}": lora_a has rank ${pair.A.dims[1]} but lora_b has rank ${pair.B.dims[0]}`);
    if (rank === -1) rank = pair.A.dims[1];
    if (pair.A.dims[1] !== rank) throw fail(`"${label}" has rank ${pair.A.dims[1]} but other tensors have rank ${rank}; adapters with per-module ranks are not supported`);
    const set = targetsByLayer.get(pair.layer) ?? new Set<LoraTarget>();
    set.add(pair.target);
    targetsByLayer.set(pair.layer, set);
  }
  const layers = [...targetsByLayer.keys()].sort((a, b) => a - b);
  const targets = LORA_TARGETS.filter((t) => targetsByLayer.get(layers[0])!.has(t));
  for (const l of layers) {
    const here = LORA_TARGETS.filter((t) => targetsByLayer.get(l)!.has(t));
    if (here.join() !== targets.join()) throw fail(`layer ${l} adapts ${here.join(', ')} but layer ${layers[0]} adapts ${targets.join(', ')}; the engine needs the same targets in every adapted layer`);
  }

  const alpha = storedAlpha === 0 ? rank : storedAlpha;
  const lora: AdapterLora = {
    rank,
    alpha,
    dropout: 0,
    rslora: false,
    targets,
    layers: layers.length === spec.numLayers ? null : layers,
    init: 'default',
  };
  const tensors: LoraTensor[] = [];
  for (const l of layers) {
    for (const target of targets) {
      const pair = pairs.get(`${l}.${target}`)!;
      const a = tensorAsFloat32(gguf, pair.A!);
      let b = tensorAsFloat32(gguf, pair.B!);
      const order = rowOrderFor(spec, architecture, target);
      if (order) b = scatterRows(b, rank, order);
      tensors.push({ name: engineName({ layer: l, target }, 'A'), shape: [rank, pair.A!.dims[0]], data: a });
      tensors.push({ name: engineName({ layer: l, target }, 'B'), shape: [pair.B!.dims[1], rank], data: b });
    }
  }
  return { file, architecture, alpha: storedAlpha, lora, scaling: loraScaling(lora), tensors };
}
