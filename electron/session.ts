// A model ready to run: the folder opened and validated, its tokenizer, and
// a native engine with the weights memory-mapped. Commands and the training
// run build on this, so "open a model" means one thing everywhere.
import { adapterTrainingQuantization } from './adapters/base-quantization.js';
import { readAnyAdapter, type AnyPeftAdapter } from './adapters/any-adapter.js';
import { PREFIX_TENSOR } from './adapters/layout.js';
import { resolveDevice, type DevicePurpose, type DeviceRequest, type ResolvedDevice } from './engine/device.js';
import { choosePrecision, type ResolvedPrecision } from './engine/precision.js';
import { loadAddon } from './engine/load.js';
import type { NativeAddon, NativeEngine, Precision, QuantizationOptions } from './engine/native.js';
import { openModelFolder, type ModelFolder } from './models/folder.js';
import { readGenerationConfig } from './models/generation-config.js';
import { ModelTokenizer } from './models/tokenizer.js';

export interface ModelSession {
  folder: ModelFolder;
  tokenizer: ModelTokenizer;
  addon: NativeAddon;
  engine: NativeEngine;
  /** where the engine computes, and why there */
  device: ResolvedDevice;
  /** the precision of its dense products, and why */
  precision: ResolvedPrecision;
  /** the adapter attached with options.adapter, or null */
  adapter: AnyPeftAdapter | null;
  /** what the user should know about how the model was opened (the CLI prints them) */
  notices: string[];
  /** on a GPU, where and in what precision it computes and why, for the CLI (the app says it with computedOn); else null */
  placement: string | null;
  dispose(): void;
}

export interface SessionOptions {
  threads: number;
  gradientCheckpointing?: boolean;
  /** seeds dropout inside the engine */
  seed?: number;
  /** NEFTune's alpha for a training run's engine (absent or 0: no noise; evaluation and generation never add any) */
  neftuneAlpha?: number;
  /**
   * Hold the block linears in 4-bit NF4 (QLoRA's base). A folder bitsandbytes
   * saved in 4 bits is always opened with its own settings, with or without this.
   */
  quantization?: QuantizationOptions | null;
  /**
   * Where the engine computes: 'auto' (the first NVIDIA GPU the engine can
   * use, else the CPU), 'cpu', 'cuda' or 'cuda:N'. Absent: the CPU (callers
   * that let the user choose pass the choice; the commands default to 'auto').
   */
  device?: DeviceRequest;
  /** what the device is for, so a refusal says "To evaluate anyway" (default 'train') */
  purpose?: DevicePurpose;
  /**
   * Precision of the dense products: 'auto' (the default: bf16 operands with
   * fp32 accumulation on a GPU with bf16 tensor cores, else fp32), 'fp32' or
   * 'bf16' (a GPU of compute capability 8.0 or later; an error elsewhere).
   */
  precision?: Precision;
}

/** NF4 with bitsandbytes' (and QLoRA's) defaults: blocksize 64, double quantization. */
export const DEFAULT_NF4: QuantizationOptions = { type: 'nf4', blocksize: 64, doubleQuant: true };

/**
 * The quantization an engine for this folder gets: a folder bitsandbytes saved
 * in 4 bits is used as saved (asking for other NF4 settings there is an
 * error, never silently ignored), any other folder gets the requested one.
 */
export function effectiveQuantization(folder: ModelFolder, requested: QuantizationOptions | null | undefined): QuantizationOptions | null {
  if (folder.quantization) {
    const { type, blocksize, doubleQuant } = folder.quantization;
    // The defaults (what --method qlora or --quant nf4 alone ask for) mean "NF4, however it is saved".
    const isDefault = requested?.blocksize === DEFAULT_NF4.blocksize && requested.doubleQuant === DEFAULT_NF4.doubleQuant;
    if (requested && !isDefault && (requested.blocksize !== blocksize || requested.doubleQuant !== doubleQuant)) {
      throw new Error(`${folder.dir}: bitsandbytes saved this model in NF4 with blocksize ${blocksize}${doubleQuant ? ' and' : ' without'} double quantization, and it is used as saved; ` +
        `it cannot be re-quantized with blocksize ${requested.blocksize}${requested.doubleQuant ? ' and' : ' without'} double quantization. Drop --quant-blocksize / --no-double-quant, or start from the original 16-bit model`);
    }
    return { type, blocksize, doubleQuant };
  }
  return requested ?? null;
}

/** Opens a model folder and its tokenizer (no engine yet). */
export async function openModelWithTokenizer(dir: string): Promise<{ folder: ModelFolder; tokenizer: ModelTokenizer }> {
  const folder = await openModelFolder(dir);
  if (!folder.hasTokenizer) {
    throw new Error(`${folder.dir}: has no tokenizer.json. Download the tokenizer files with the model.`);
  }
  return { folder, tokenizer: await ModelTokenizer.load(folder.dir) };
}

/** Creates an engine for an opened folder and loads its weights (frozen until a method is set up). */
export function createEngine(addon: NativeAddon, folder: ModelFolder, options: SessionOptions): NativeEngine {
  // resolved here too, so that a GPU that is not there is refused with what to do, before any weight is read
  const { device, gpu } = resolveDevice(addon, options.device ?? 'cpu', options.purpose ?? 'train');
  // resolved here (not left to the engine's 'auto'), so callers can record what was used
  const { precision } = choosePrecision(options.precision ?? 'auto', gpu);
  const engine = new addon.Engine(folder.spec, {
    device,
    precision,
    threads: options.threads,
    gradientCheckpointing: options.gradientCheckpointing ?? false,
    seed: options.seed ?? 0,
    neftuneAlpha: options.neftuneAlpha ?? 0,
    quantization: effectiveQuantization(folder, options.quantization),
  });
  try {
    engine.loadWeights(folder.weights);
  } catch (e) {
    engine.dispose();
    throw e;
  }
  return engine;
}

/**
 * Reads a PEFT adapter for this model (LoRA, prompt tuning or prefix tuning,
 * by its peft_type), sets the engine up with its layout and copies its
 * tensors in. `dropout` overrides a LoRA's (training). A prefix adapter is
 * always the plain table (PEFT folds a projection into it when saving), so it
 * is set up without projection.
 */
export async function attachAdapter(engine: NativeEngine, folder: ModelFolder, adapterDir: string, seed: number, dropout?: number): Promise<AnyPeftAdapter> {
  const adapter = await readAnyAdapter(adapterDir, folder.spec);
  switch (adapter.kind) {
    case 'lora':
      engine.setupLora({ ...adapter.lora, dropout: dropout ?? adapter.lora.dropout, seed });
      for (const t of adapter.tensors) engine.setTensor(t.name, t.data);
      break;
    case 'prompt':
      engine.setupPromptTuning({ numVirtualTokens: adapter.prompt.numVirtualTokens, init: adapter.table });
      break;
    case 'prefix':
      engine.setupPrefixTuning({ numVirtualTokens: adapter.prefix.numVirtualTokens, projection: null, seed });
      engine.setTensor(PREFIX_TENSOR, adapter.table);
      break;
  }
  return adapter;
}

/** Positions an attached adapter takes before the real tokens (its virtual tokens; 0 for LoRA or none). */
export function virtualTokensOf(adapter: AnyPeftAdapter | null): number {
  if (adapter === null || adapter.kind === 'lora') return 0;
  return adapter.kind === 'prompt' ? adapter.prompt.numVirtualTokens : adapter.prefix.numVirtualTokens;
}

/** Opens a model (and optionally a LoRA, prompt or prefix tuning adapter on it) for evaluation or generation. */
export async function openSession(dir: string, options: SessionOptions & { adapter?: string | null }): Promise<ModelSession> {
  const { folder, tokenizer } = await openModelWithTokenizer(dir);
  const addon = loadAddon();
  // what the folder itself noted (tensors the config does not use, a broken generation_config.json)
  const notices: string[] = [...folder.notices];
  // An adapter trained on a 4-bit base (its run.json says so) is used on that
  // base unless the caller asked for a quantization itself.
  let quantization = options.quantization ?? null;
  if (options.adapter && quantization === null && !folder.quantization) {
    quantization = await adapterTrainingQuantization(options.adapter);
    if (quantization) {
      notices.push(`${options.adapter} was trained on a 4-bit NF4 base (run.json: blocksize ${quantization.blocksize}, ` +
        `${quantization.doubleQuant ? 'double quantization' : 'no double quantization'}); the model is quantized the same way`);
    }
  }
  const device = resolveDevice(addon, options.device ?? 'cpu', options.purpose ?? 'train');
  const precision = choosePrecision(options.precision ?? 'auto', device.gpu);
  const placement = device.gpu ? `running on ${device.reason}; precision ${precision.reason}` : null;
  const engine = createEngine(addon, folder, { ...options, quantization, device: device.device, precision: precision.precision });
  let adapter: AnyPeftAdapter | null = null;
  if (options.adapter) {
    try {
      adapter = await attachAdapter(engine, folder, options.adapter, options.seed ?? 0);
    } catch (e) {
      engine.dispose();
      throw e;
    }
  }
  let disposed = false;
  return {
    folder,
    tokenizer,
    addon,
    engine,
    device,
    precision,
    adapter,
    notices,
    placement,
    dispose() {
      if (!disposed) engine.dispose();
      disposed = true;
    },
  };
}

/**
 * Token ids that end generation: generation_config.json's eos_token_id when
 * present (as transformers takes it), else config.json's, else the tokenizer's
 * EOS (transformers stops on none without a generation config; a model with
 * neither would never stop here either).
 */
export async function stopTokenIds(folder: ModelFolder, tokenizer: ModelTokenizer): Promise<number[]> {
  const fromGenerationConfig = (await readGenerationConfig(folder.dir))?.eosTokenIds;
  if (fromGenerationConfig) return fromGenerationConfig;
  if (folder.config.eosTokenIds.length > 0) return folder.config.eosTokenIds;
  return tokenizer.eosId === null ? [] : [tokenizer.eosId];
}
