// Next-token choice from logits, with transformers' warpers in its order
// (GenerationMixin._get_logits_processor): temperature, then top-k, then
// top-p (nucleus), then min-p, then typical-p, then the epsilon and the eta
// cutoffs, then a draw from what is left, renormalized. Each warper sees the
// tokens the ones before it left, renormalized (transformers' softmax of the
// scores so far). Temperature 0 means greedy argmax (no draw, and none of the
// warpers: transformers adds them only when sampling). The repetition
// penalty and the n-gram ban come before all of this (repetition-penalty.ts,
// no-repeat-ngram.ts), in greedy decoding too.
//
// Nothing here sorts the vocabulary: top-k's cut is the k-th largest logit
// (a heap pass), the nucleus and typical-p's run a selection by mass
// (partial-select.ts); only the kept tokens are sorted, and drawn in token-id
// order. A warper that is off costs one comparison.
import { Prng } from '../random/prng.js';
import { kthLargest, nucleusOf } from './partial-select.js';
import { etaFloor, floorPositions } from './probability-floor.js';
import { typicalPositions } from './typical-p.js';

export interface SamplingOptions {
  /** 0 = greedy */
  temperature: number;
  /** keep the k most likely tokens (and any tied with the k-th, as transformers keeps them); 0 or absent = every token */
  topK?: number;
  /** then keep the smallest set of most likely tokens whose probability reaches topP; 1 = all */
  topP: number;
  /** then drop the tokens less likely than minP times the most likely one (after temperature); 0 or absent = none */
  minP?: number;
  /** then keep the most typical tokens until their probability reaches typicalP (transformers' typical_p); 1 or absent = all */
  typicalP?: number;
  /** then drop the tokens less likely than this, but the most likely (transformers' epsilon_cutoff); 0 or absent = none */
  epsilonCutoff?: number;
  /** then drop the tokens less likely than min(eta, sqrt(eta) e^-entropy), but the most likely (transformers' eta_cutoff); 0 or absent = none */
  etaCutoff?: number;
}

/** Index of the largest logit (the first one on ties, as torch.argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** What a draw chooses from: token ids in ascending order, and their probabilities (summing to 1). */
export interface Candidates {
  ids: Int32Array;
  probs: Float64Array;
}

/** Why these options cannot sample, or null. */
export function samplingOptionsProblem(options: SamplingOptions): string | null {
  if (!(options.temperature >= 0) || !Number.isFinite(options.temperature)) return `temperature must be a number >= 0, got ${options.temperature}`;
  if (!(options.topP >= 0 && options.topP <= 1)) return `top-p must be in [0, 1], got ${options.topP}`;
  const topK = options.topK ?? 0;
  if (!Number.isSafeInteger(topK) || topK < 0) return `top-k must be a whole number >= 0 (0: off), got ${topK}`;
  const minP = options.minP ?? 0;
  if (!(minP >= 0 && minP <= 1)) return `min-p must be in [0, 1] (0: off), got ${minP}`;
  // TypicalLogitsWarper, EpsilonLogitsWarper and EtaLogitsWarper refuse anything outside (0, 1); 1 and 0 are
  // GenerationConfig's values that add none of them
  const typicalP = options.typicalP ?? 1;
  if (!(typicalP > 0 && typicalP <= 1)) return `typical-p must be in (0, 1] (1: off), got ${typicalP}`;
  for (const [name, value] of [['epsilon cutoff', options.epsilonCutoff], ['eta cutoff', options.etaCutoff]] as const) {
    const v = value ?? 0;
    if (!(v >= 0 && v < 1)) return `${name} must be in [0, 1) (0: off), got ${v}`;
  }
  return null;
}

/**
 * The tokens a sampled draw may pick and their probabilities, after
 * temperature, top-k, top-p, min-p, typical-p, epsilon and eta, as
 * transformers' warpers leave them (temperature > 0).
 */
export function candidates(logits: ArrayLike<number>, options: SamplingOptions): Candidates {
  const problem = samplingOptionsProblem(options);
  if (problem) throw new Error(problem);
  if (options.temperature === 0) throw new Error('candidates: temperature 0 is greedy (argmax), not a draw');
  const v = logits.length;
  let max = -Infinity;
  for (let i = 0; i < v; i++) if (logits[i] > max) max = logits[i];
  const topK = options.topK ?? 0;
  // the tokens top-k keeps, ascending; every token when it keeps them all
  const ids = topK > 0 && topK < v ? topKIds(logits, topK) : identity(v);
  // softmax over them (top-p and the draw see top-k's tokens renormalized, as in transformers)
  const probs = new Float64Array(ids.length);
  let sum = 0;
  for (let j = 0; j < ids.length; j++) {
    probs[j] = Math.exp((logits[ids[j]] - max) / options.temperature);
    sum += probs[j];
  }
  for (let j = 0; j < probs.length; j++) probs[j] /= sum;
  let c: Candidates = options.topP >= 1 ? { ids, probs } : nucleusCandidates({ ids, probs }, options.topP);
  if ((options.minP ?? 0) > 0) c = minPCandidates(c, options.minP!);
  if ((options.typicalP ?? 1) < 1) c = keeping(c, typicalPositions(c.probs, options.typicalP!));
  if ((options.epsilonCutoff ?? 0) > 0) c = keeping(c, floorPositions(c.probs, options.epsilonCutoff!));
  // eta's floor is read on what epsilon left (transformers' order: each warper's softmax sees the ones before)
  if ((options.etaCutoff ?? 0) > 0) c = keeping(c, floorPositions(c.probs, etaFloor(c.probs, options.etaCutoff!)));
  return c;
}

/** `c` at `positions` (ascending), renormalized; `c` itself when they are all of it. */
function keeping(c: Candidates, positions: Int32Array): Candidates {
  return positions.length === c.ids.length ? c : renormalized(c, positions);
}

/** Top-p's nucleus of `c`, renormalized (ascending ids). */
function nucleusCandidates(c: Candidates, topP: number): Candidates {
  // by position in ids: the lower position is the lower id, so ties break as the ids would
  const nucleus = nucleusOf(identity(c.ids.length), c.probs, topP).slice().sort();
  return renormalized(c, nucleus);
}

/**
 * transformers' MinPLogitsWarper on what top-p left: a token stays when its
 * probability is at least minP times the largest one's. Renormalizing does
 * not change that ratio, so it is read on `c` as it is. The most likely token
 * always stays (min_tokens_to_keep 1; minP <= 1).
 */
function minPCandidates(c: Candidates, minP: number): Candidates {
  let top = 0;
  for (let j = 0; j < c.probs.length; j++) if (c.probs[j] > top) top = c.probs[j];
  const floor = minP * top;
  const kept: number[] = [];
  for (let j = 0; j < c.probs.length; j++) if (c.probs[j] >= floor) kept.push(j);
  return kept.length === c.ids.length ? c : renormalized(c, kept);
}

/** The candidates at `positions` (ascending) of `c`, their probabilities summing to 1 again. */
function renormalized(c: Candidates, positions: ArrayLike<number>): Candidates {
  const kept = { ids: new Int32Array(positions.length), probs: new Float64Array(positions.length) };
  let keptSum = 0;
  for (let j = 0; j < positions.length; j++) {
    kept.ids[j] = c.ids[positions[j]];
    kept.probs[j] = c.probs[positions[j]];
    keptSum += kept.probs[j];
  }
  for (let j = 0; j < kept.probs.length; j++) kept.probs[j] /= keptSum;
  return kept;
}

/** The ids whose logit is at least the k-th largest (transformers removes only those below it, so ties stay), ascending. */
function topKIds(logits: ArrayLike<number>, k: number): Int32Array {
  const cut = kthLargest(logits, k);
  let count = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] >= cut) count++;
  const ids = new Int32Array(count);
  for (let i = 0, at = 0; i < logits.length; i++) if (logits[i] >= cut) ids[at++] = i;
  return ids;
}

function identity(n: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return ids;
}

export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Prng): number {
  const problem = samplingOptionsProblem(options);
  if (problem) throw new Error(problem);
  if (options.temperature === 0) return argmax(logits);
  const { ids, probs } = candidates(logits, options);
  let u = rng.nextFloat();
  for (let j = 0; j < ids.length; j++) {
    u -= probs[j];
    if (u < 0) return ids[j];
  }
  // rounding left a sliver: the last token that can be drawn takes it
  for (let j = ids.length - 1; j > 0; j--) if (probs[j] > 0) return ids[j];
  return ids[0];
}

