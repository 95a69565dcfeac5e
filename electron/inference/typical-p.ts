// Typical sampling as transformers' TypicalLogitsWarper does it
// (generation/logits_process.py), on what the earlier warpers left: the
// tokens whose surprisal (-log p) is closest to the distribution's entropy
// come first, and the shortest run of them whose probability reaches
// typical_p is kept, with every token exactly as typical as the last one of
// that run (transformers removes only the tokens strictly less typical than
// it). The most likely tokens can be dropped: that is the point.
//
// The run is found by a selection by mass (partial-select.ts), not a sort of
// the vocabulary: only the tokens it keeps are sorted.
import { prefixReaching } from './partial-select.js';

/**
 * The entropy of a distribution in nats, -sum p log p; a zero probability
 * adds nothing (transformers sums p log p with nansum: 0 * -inf is dropped).
 */
export function entropyOf(probs: ArrayLike<number>): number {
  let h = 0;
  for (let j = 0; j < probs.length; j++) if (probs[j] > 0) h -= probs[j] * Math.log(probs[j]);
  return h;
}

/**
 * The positions of `probs` (the candidates' probabilities, summing to 1)
 * that TypicalLogitsWarper keeps at `mass` (0 < mass < 1), ascending.
 *
 * transformers sorts the tokens by |-log p - H| ascending, takes last_ind =
 * the count of sorted positions whose cumulative probability is below mass
 * (the first one that reaches it), clamped to the last position, and removes
 * the tokens strictly less typical than the one there. So: the shortest
 * typical-first run reaching `mass`, its last token's distance the cut, ties
 * with it kept; every token when the whole mass falls short (the clamp: a
 * rounding at mass close to 1). Its first sorted token always stays
 * (min_tokens_to_keep 1), which the cut already keeps.
 */
export function typicalPositions(probs: Float64Array, mass: number): Int32Array {
  const n = probs.length;
  // each token's surprisal -log p (one log per token: the entropy is their mean); a zero probability (a token
  // banned to -inf) is infinitely surprising and adds nothing to the entropy
  const distance = new Float64Array(n);
  let h = 0;
  for (let j = 0; j < n; j++) {
    distance[j] = probs[j] > 0 ? -Math.log(probs[j]) : Infinity;
    if (probs[j] > 0) h += probs[j] * distance[j];
  }
  // then how far it is from the expected one: +inf stays +inf, and sorts last as transformers' does
  for (let j = 0; j < n; j++) distance[j] = Math.abs(distance[j] - h);
  // nearest first, ties by position (the ascending ids): the run's cut does not depend on that order, the
  // kept set neither (ties at the cut are all kept)
  const positions = new Int32Array(n);
  for (let j = 0; j < n; j++) positions[j] = j;
  const run = prefixReaching(positions, distance, 'ascending', probs, mass);
  const cut = distance[run[run.length - 1]];
  let count = 0;
  for (let j = 0; j < n; j++) if (distance[j] <= cut) count++;
  const kept = new Int32Array(count);
  for (let j = 0, at = 0; j < n; j++) if (distance[j] <= cut) kept[at++] = j;
  return kept;
}
