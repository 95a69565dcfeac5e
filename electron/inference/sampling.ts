// Next-token choice from logits, in the order transformers applies its
// warpers: temperature first, then top-p (nucleus), then a draw from the
// renormalized distribution. Temperature 0 means greedy argmax (no draw).
import { Prng } from '../random/prng.js';

export interface SamplingOptions {
  /** 0 = greedy */
  temperature: number;
  /** keep the smallest set of most likely tokens whose probability reaches topP; 1 = all */
  topP: number;
}

/** Index of the largest logit (the first one on ties, as torch.argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** softmax(logits / temperature) in float64. */
export function softmaxWithTemperature(logits: ArrayLike<number>, temperature: number): Float64Array {
  const p = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    p[i] = Math.exp((logits[i] - max) / temperature);
    sum += p[i];
  }
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** Token ids kept by nucleus filtering, most likely first (always at least one). */
export function nucleus(probs: Float64Array, topP: number): number[] {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  if (topP >= 1) return order;
  const kept: number[] = [];
  let cumulative = 0;
  for (const id of order) {
    kept.push(id);
    cumulative += probs[id];
    if (cumulative >= topP) break;
  }
  return kept;
}

export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Prng): number {
  if (!(options.temperature >= 0)) throw new Error(`temperature must be >= 0, got ${options.temperature}`);
  if (!(options.topP > 0 && options.topP <= 1)) throw new Error(`top-p must be in (0, 1], got ${options.topP}`);
  if (options.temperature === 0) return argmax(logits);
  const probs = softmaxWithTemperature(logits, options.temperature);
  const kept = nucleus(probs, options.topP);
  let total = 0;
  for (const id of kept) total += probs[id];
  let u = rng.nextFloat() * total;
  for (const id of kept) {
    u -= probs[id];
    if (u < 0) return id;
  }
  return kept[kept.length - 1]; // rounding left a sliver: the last kept token takes it
}
