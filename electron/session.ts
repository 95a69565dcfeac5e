// A model ready to run: the folder opened and validated, its tokenizer, and
// a native engine with the weights memory-mapped. Commands and the training
// run build on this, so "open a model" means one thing everywhere.
import { readPeftAdapter, type PeftLoraAdapter } from './adapters/peft.js';
import { loadAddon } from './engine/load.js';
import type { NativeAddon, NativeEngine } from './engine/native.js';
import { openModelFolder, type ModelFolder } from './models/folder.js';
import { readGenerationConfig } from './models/generation-config.js';
import { ModelTokenizer } from './models/tokenizer.js';

export interface ModelSession {
  folder: ModelFolder;
  tokenizer: ModelTokenizer;
  addon: NativeAddon;
  engine: NativeEngine;
  dispose(): void;
}

export interface SessionOptions {
  threads: number;
  gradientCheckpointing?: boolean;
  /** seeds dropout inside the engine */
  seed?: number;
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
  const engine = new addon.Engine(folder.spec, {
    threads: options.threads,
    gradientCheckpointing: options.gradientCheckpointing ?? false,
    seed: options.seed ?? 0,
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
 * Reads a PEFT LoRA adapter for this model, sets the engine up with its layout
 * and copies its tensors in. `dropout` overrides the adapter's (training).
 */
export async function attachAdapter(engine: NativeEngine, folder: ModelFolder, adapterDir: string, seed: number, dropout?: number): Promise<PeftLoraAdapter> {
  const adapter = await readPeftAdapter(adapterDir, folder.spec);
  engine.setupLora({ ...adapter.lora, dropout: dropout ?? adapter.lora.dropout, seed });
  for (const t of adapter.tensors) engine.setTensor(t.name, t.data);
  return adapter;
}

/** Opens a model (and optionally a LoRA adapter on it) for evaluation or generation. */
export async function openSession(dir: string, options: SessionOptions & { adapter?: string | null }): Promise<ModelSession> {
  const { folder, tokenizer } = await openModelWithTokenizer(dir);
  const addon = loadAddon();
  const engine = createEngine(addon, folder, options);
  if (options.adapter) {
    try {
      await attachAdapter(engine, folder, options.adapter, options.seed ?? 0);
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
    dispose() {
      if (!disposed) engine.dispose();
      disposed = true;
    },
  };
}

/**
 * Token ids that end generation, as transformers decides: generation_config.json's
 * eos_token_id when present, else config.json's, else the tokenizer's EOS.
 */
export async function stopTokenIds(folder: ModelFolder, tokenizer: ModelTokenizer): Promise<number[]> {
  const fromGenerationConfig = (await readGenerationConfig(folder.dir))?.eosTokenIds;
  if (fromGenerationConfig) return fromGenerationConfig;
  if (folder.config.eosTokenIds.length > 0) return folder.config.eosTokenIds;
  return tokenizer.eosId === null ? [] : [tokenizer.eosId];
}
