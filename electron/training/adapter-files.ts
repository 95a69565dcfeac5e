// Saving the engine's adapter tensors as PEFT adapter files
// (electron/adapters/ does the file formats), and the size an adapter file
// will have on disk. LoRA tensors (with DoRA the magnitudes too) are saved as they are; prompt tuning saves
// the engine's prompt_embeddings; prefix tuning saves the engine's prefix
// table (with a projection: the MLP's output, as PEFT saves it).
import type { ModelSpec, NativeEngine } from '../engine/native.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { PROMPT_TENSOR, type AdapterLayout } from '../adapters/layout.js';
import { engineNameToPeftKey, loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import { numVirtualTokensOf, PROMPT_EMBEDDINGS_KEY, writePromptAdapter, type PromptLearningLayout } from '../adapters/prompt-adapter.js';
import { promptEmbeddingsShape } from '../adapters/prompt-config.js';
import { safetensorsFileSize } from '../safetensors/write.js';

export type SaveAdapterOptions = {
  engine: NativeEngine;
  spec: ModelSpec;
  /** recorded as base_model_name_or_path */
  baseModel: string;
  /** recorded as revision (the base's commit, for a model from the Hugging Face cache); default null */
  baseRevision?: string | null;
  modelCardNotes?: string;
  /**
   * Write the adapter files into `dir` next to what is already there (a run
   * folder with metrics.jsonl and checkpoints/). Default: `dir` becomes a
   * folder of its own, replaced as a whole if present.
   */
  keepOtherFiles?: boolean;
} & ({ lora: AdapterLora } | { layout: AdapterLayout });

function layoutOf(options: SaveAdapterOptions): AdapterLayout {
  return 'layout' in options ? options.layout : { kind: 'lora', lora: options.lora };
}

/** Writes the engine's adapter (LoRA, prompt or prefix tuning) as a PEFT adapter into `dir`. */
export async function saveAdapterFolder(dir: string, options: SaveAdapterOptions): Promise<void> {
  const layout = layoutOf(options);
  const common = { dir, spec: options.spec, baseModelNameOrPath: options.baseModel, revision: options.baseRevision ?? null, overwrite: true, keepOtherFiles: options.keepOtherFiles, modelCardNotes: options.modelCardNotes };
  if (layout.kind === 'lora') {
    const tensors = loraTensorShapes(options.spec, layout.lora).map(({ name, shape }) => ({ name, shape, data: options.engine.getTensor(name) }));
    await writePeftAdapter({ ...common, lora: layout.lora, tensors });
    return;
  }
  const table = layout.kind === 'prompt' ? options.engine.getTensor(PROMPT_TENSOR) : options.engine.prefixTable();
  await writePromptAdapter({ ...common, layout, table });
}

/** Bytes of adapter_model.safetensors for an adapter layout: its exact header plus F32 data. */
export function adapterFileBytes(spec: ModelSpec, layout: { kind: 'lora'; lora: Pick<AdapterLora, 'rank' | 'targets' | 'layers' | 'dora'> } | PromptLearningLayout): number {
  if (layout.kind !== 'lora') {
    const shape = promptEmbeddingsShape(layout.kind, numVirtualTokensOf(layout), spec);
    return safetensorsFileSize([{ name: PROMPT_EMBEDDINGS_KEY, dtype: 'F32', shape }], { format: 'pt' });
  }
  const tensors = loraTensorShapes(spec, layout.lora).map((t) => ({ name: engineNameToPeftKey(t.name), dtype: 'F32' as const, shape: t.shape }));
  return safetensorsFileSize(tensors, { format: 'pt' });
}
