// A DoRA adapter with random A, non-zero random B and magnitudes away from the
// norms they rescale (a fresh DoRA has B = 0 and m = ||W||_row, which changes
// nothing and would hide every mistake), written as a PEFT folder for the
// export and load tests. Each magnitude is the row norm of W + s·B·A (float64)
// times a factor in [0.8, 1.2], so the adapted model stays close to the base.
import { loraTensorShapes, projectionSize, writePeftAdapter, type LoraTensor } from '../adapters/peft.js';
import { loraScaling, type AdapterLora } from '../adapters/peft-config.js';
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { Prng } from '../random/prng.js';

/** Float64 row norms of W + s·B·A: W [out, in], A [r, in], B [out, r]. */
export function doraRowNorms(W: ArrayLike<number>, A: ArrayLike<number>, B: ArrayLike<number>, out: number, inF: number, r: number, s: number): Float64Array {
  const norms = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let sq = 0;
    for (let i = 0; i < inF; i++) {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += B[o * r + k] * A[k * inF + i];
      const w = W[o * inF + i] + s * ba;
      sq += w * w;
    }
    norms[o] = Math.sqrt(sq);
  }
  return norms;
}

/**
 * Writes the adapter to `dir`; `weightOf` gives a base weight's values as the
 * engine holds them ([out, in] float32, e.g. a tiny model's tensors). Returns
 * the tensors by engine name.
 */
export async function writeRandomDoraAdapter(dir: string, spec: ModelSpec, baseDir: string, lora: AdapterLora, weightOf: (name: string) => Float32Array, seed = 11): Promise<Map<string, LoraTensor>> {
  if (lora.dora !== true) throw new Error('writeRandomDoraAdapter: lora.dora must be true');
  const rng = new Prng(seed);
  const s = loraScaling(lora);
  const tensors: LoraTensor[] = [];
  const shapes = loraTensorShapes(spec, lora);
  for (let i = 0; i < shapes.length; i += 3) {
    const [a, b, m] = shapes.slice(i, i + 3);
    const A = Float32Array.from({ length: a.shape[0] * a.shape[1] }, () => (rng.nextFloat() - 0.5) * 0.4);
    const B = Float32Array.from({ length: b.shape[0] * b.shape[1] }, () => (rng.nextFloat() - 0.5) * 0.4);
    const module = a.name.replace(/\.lora_A\.weight$/, '');
    const [inF, out] = projectionSize(spec, module.split('.').pop() as LoraTarget);
    const norms = doraRowNorms(weightOf(`${module}.weight`), A, B, out, inF, lora.rank, s);
    const M = Float32Array.from(norms, (n) => n * (0.8 + 0.4 * rng.nextFloat()));
    tensors.push({ name: a.name, shape: a.shape, data: A }, { name: b.name, shape: b.shape, data: B }, { name: m.name, shape: m.shape, data: M });
  }
  await writePeftAdapter({ dir, spec, lora, baseModelNameOrPath: baseDir, tensors });
  return new Map(tensors.map((t) => [t.name, t]));
}
