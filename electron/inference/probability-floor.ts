// Epsilon and eta sampling as transformers' EpsilonLogitsWarper and
// EtaLogitsWarper do them (generation/logits_process.py): every token less
// likely than a floor is removed, but never the most likely one (nor any tied
// with it: min_tokens_to_keep 1 keeps the tokens whose score is the top-1
// score). Epsilon's floor is epsilon_cutoff itself; eta's is
// min(eta, sqrt(eta) * exp(-H)), H the entropy of the distribution it sees,
// so a flat distribution (high entropy) gets a lower floor.
import { entropyOf } from './typical-p.js';

/** EtaLogitsWarper's floor for `probs` (summing to 1) at eta_cutoff `eta` (0 < eta < 1). */
export function etaFloor(probs: ArrayLike<number>, eta: number): number {
  return Math.min(eta, Math.sqrt(eta) * Math.exp(-entropyOf(probs)));
}

/** The positions of `probs` whose probability is at least `floor`, or is the largest one, ascending. */
export function floorPositions(probs: ArrayLike<number>, floor: number): Int32Array {
  let top = 0;
  for (let j = 0; j < probs.length; j++) if (probs[j] > top) top = probs[j];
  const stays = (p: number) => p >= floor || p === top;
  let count = 0;
  for (let j = 0; j < probs.length; j++) if (stays(probs[j])) count++;
  const kept = new Int32Array(count);
  for (let j = 0, at = 0; j < probs.length; j++) if (stays(probs[j])) kept[at++] = j;
  return kept;
}
