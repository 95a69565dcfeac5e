// Saving the engine's LoRA tensors as PEFT adapter files
// (electron/adapters/peft.ts does the file format), and the size an adapter
// file will have on disk.
import type { ModelSpec, NativeEngine } from '../engine/native.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { engineNameToPeftKey, loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import { safetensorsFileSize } from '../safetensors/write.js';

export interface SaveAdapterOptions {
  engine: NativeEngine;
  spec: ModelSpec;
  lora: AdapterLora;
  /** recorded as base_model_name_or_path */
  baseModel: string;
  modelCardNotes?: string;
  /**
   * Write the adapter files into `dir` next to what is already there (a run
   * folder with metrics.jsonl and checkpoints/). Default: `dir` becomes a
   * folder of its own, replaced as a whole if present.
   */
  keepOtherFiles?: boolean;
}

/** Writes the engine's LoRA tensors as a PEFT adapter into `dir`. */
export async function saveAdapterFolder(dir: string, options: SaveAdapterOptions): Promise<void> {
  const tensors = loraTensorShapes(options.spec, options.lora).map(({ name, shape }) => ({
    name,
    shape,
    data: options.engine.getTensor(name),
  }));
  await writePeftAdapter({
    dir,
    spec: options.spec,
    lora: options.lora,
    baseModelNameOrPath: options.baseModel,
    tensors,
    overwrite: true,
    keepOtherFiles: options.keepOtherFiles,
    modelCardNotes: options.modelCardNotes,
  });
}

/** Bytes of adapter_model.safetensors for a LoRA layout: its exact header plus F32 data. */
export function adapterFileBytes(spec: ModelSpec, lora: Pick<AdapterLora, 'rank' | 'targets' | 'layers'>): number {
  const tensors = loraTensorShapes(spec, lora).map((t) => ({ name: engineNameToPeftKey(t.name), dtype: 'F32' as const, shape: t.shape }));
  return safetensorsFileSize(tensors, { format: 'pt' });
}
