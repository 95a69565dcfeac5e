// The repetition penalty against transformers' RepetitionPenaltyLogitsProcessor
// read plainly: gather the logits of input_ids, where(score < 0, score * p,
// score / p), scatter them back. A scatter writes each id once, so an id the
// sequence holds three times is penalized once.
import { describe, expect, it } from 'vitest';
import { Prng } from '../random/prng.js';
import { RepetitionPenalty } from './repetition-penalty.js';

/** transformers' processor on one row, in float64: every id in `inputIds`, however often. */
function transformersPenalty(logits: Float32Array, inputIds: number[], penalty: number): Float64Array {
  const scores = Float64Array.from(logits);
  const gathered = inputIds.map((id) => scores[id]);
  const penalized = gathered.map((s) => (s < 0 ? s * penalty : s / penalty));
  inputIds.forEach((id, j) => (scores[id] = penalized[j]));
  return scores;
}

describe('RepetitionPenalty', () => {
  it("penalizes each distinct id of the prompt and the answer once, as transformers' processor does", () => {
    const rng = new Prng(8);
    const logits = Float32Array.from({ length: 200 }, () => (rng.nextFloat() - 0.5) * 10);
    logits[7] = 0; // a zero logit is divided (stays 0), as torch.where(score < 0, ...) leaves it
    const prompt = [1, 7, 3, 3, 150, 3, 42];
    const generated = [42, 9, 150, 9];
    for (const p of [1.05, 1.3, 0.8]) {
      const penalty = new RepetitionPenalty(p, prompt);
      for (const id of generated) penalty.add(id);
      const ours = Float32Array.from(logits);
      penalty.apply(ours);
      const want = transformersPenalty(logits, [...prompt, ...generated], p);
      for (let i = 0; i < logits.length; i++) expect(ours[i], `penalty ${p}, id ${i}`).toBe(Math.fround(want[i]));
      // ids never seen are untouched; seen ones moved towards less likely (a penalty < 1 the other way)
      expect(ours[100]).toBe(logits[100]);
      expect(ours[3] < logits[3], `penalty ${p}`).toBe(p > 1);
    }
  });

  it('1 changes nothing; a penalty that is not a positive number is refused', () => {
    const logits = Float32Array.from([1, -2, 3]);
    new RepetitionPenalty(1, [0, 1, 2]).apply(logits);
    expect([...logits]).toEqual([1, -2, 3]);
    for (const bad of [0, -1.1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new RepetitionPenalty(bad)).toThrow(`repetition penalty must be a number > 0 (1: off), got ${bad}`);
    }
  });
});
