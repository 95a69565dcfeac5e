// A LoRA adapter with random A and non-zero random B (a freshly initialised
// adapter has B = 0 and would hide every mistake in B's layout), written as a
// PEFT folder, for the export tests.
import { loraTensorShapes, writePeftAdapter, type LoraTensor } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import type { ModelSpec } from '../engine/native.js';
import { Prng } from '../random/prng.js';

export async function writeRandomAdapter(dir: string, spec: ModelSpec, baseDir: string, lora: AdapterLora, seed = 5, edit?: (t: LoraTensor) => void): Promise<Map<string, LoraTensor>> {
  const rng = new Prng(seed);
  const tensors = loraTensorShapes(spec, lora).map(({ name, shape }) => ({
    name,
    shape,
    data: Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.4),
  }));
  tensors.forEach((t) => edit?.(t));
  await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: baseDir, tensors });
  return new Map(tensors.map((t) => [t.name, t]));
}
