// Saving the engine's LoRA tensors as PEFT adapter folders
// (electron/adapters/peft.ts does the file format), and the size an adapter
// file will have on disk.
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ModelSpec, NativeEngine } from '../engine/native.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import { planSafetensors, type TensorToWrite } from '../safetensors/write.js';

export interface SaveAdapterOptions {
  engine: NativeEngine;
  spec: ModelSpec;
  lora: AdapterLora;
  /** recorded as base_model_name_or_path */
  baseModel: string;
  modelCardNotes?: string;
}

/** Writes the engine's LoRA tensors as a PEFT adapter folder of its own (replaced if present). */
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
    modelCardNotes: options.modelCardNotes,
  });
}

/**
 * Writes the adapter files into a folder that holds other things too (a run
 * folder with metrics.jsonl and checkpoints/): the adapter is written as a
 * folder beside it, then its files are renamed in, each replacing any older
 * copy, so the other files stay untouched.
 */
export async function saveAdapterInto(dir: string, options: SaveAdapterOptions): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const staging = join(dir, `.adapter-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await saveAdapterFolder(staging, options);
    const files = await readdir(staging);
    for (const f of files) await rename(join(staging, f), join(dir, f));
    return files;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Bytes of adapter_model.safetensors for a LoRA layout: its exact header plus F32 data. */
export function adapterFileBytes(spec: ModelSpec, lora: Pick<AdapterLora, 'rank' | 'targets' | 'layers'>): number {
  return safetensorsFileBytes(loraTensorShapes(spec, lora).map((t) => ({ name: `base_model.model.${t.name}`, shape: t.shape })));
}

/**
 * Size of an F32 safetensors file with these tensors and {format: "pt"}
 * metadata. The writer's planner lays out the header from each tensor's byte
 * length alone, so a length-only view stands in for the data: nothing the
 * size of the model is allocated.
 */
export function safetensorsFileBytes(tensors: { name: string; shape: number[] }[]): number {
  const { prefix, dataBytes } = planSafetensors(
    tensors.map((t): [string, TensorToWrite] => {
      const byteLength = t.shape.reduce((a, d) => a * d, 1) * 4;
      const lengthOnly = { buffer: new ArrayBuffer(0), byteOffset: 0, byteLength } as ArrayBufferView;
      return [t.name, { dtype: 'F32', shape: t.shape, data: lengthOnly }];
    }),
    { format: 'pt' },
  );
  return prefix.length + dataBytes;
}
