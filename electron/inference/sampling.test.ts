// Token choice against a plain float64 reading of transformers' warpers
// (TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper ->
// MinPLogitsWarper, then softmax: generation/logits_process.py, in the order
// generation/utils.py _get_logits_processor appends them), written here with
// full sorts, so the partial selections in partial-select.ts are checked
// against the obvious algorithm on the same logits.
import { describe, expect, it } from 'vitest';
import { Prng } from '../random/prng.js';
import { kthLargest, nucleusOf } from './partial-select.js';
import { argmax, candidates, sampleToken, type SamplingOptions } from './sampling.js';

/** transformers' warpers in float64 with full sorts: the probability of every token left (by id). */
function transformersWarpers(logits: ArrayLike<number>, o: { temperature: number; topK: number; topP: number; minP?: number }): Map<number, number> {
  const v = logits.length;
  const scores = Float64Array.from(logits, (l) => l / o.temperature);
  if (o.topK > 0) {
    // scores < torch.topk(scores, k)[0][..., -1] are removed
    const kth = [...scores].sort((a, b) => b - a)[Math.min(o.topK, v) - 1];
    for (let i = 0; i < v; i++) if (scores[i] < kth) scores[i] = -Infinity;
  }
  const softmax = (s: Float64Array) => {
    const max = Math.max(...s);
    const e = s.map((x) => Math.exp(x - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / sum);
  };
  if (o.topP < 1) {
    // sort ascending, cumulative sum, remove while cumsum <= 1 - top_p, keep the last one always
    const p = softmax(scores);
    const ascending = [...scores.keys()].sort((a, b) => p[a] - p[b] || b - a);
    let cumulative = 0;
    for (let r = 0; r < v - 1; r++) {
      cumulative += p[ascending[r]];
      if (cumulative <= 1 - o.topP) scores[ascending[r]] = -Infinity;
    }
  }
  if (o.minP !== undefined) {
    // MinPLogitsWarper: probs = softmax(scores); remove probs < min_p * probs.amax(); keep the top min_tokens_to_keep (1)
    const p = softmax(scores);
    const top = Math.max(...p);
    const best = p.indexOf(top);
    for (let i = 0; i < v; i++) if (p[i] < o.minP * top && i !== best) scores[i] = -Infinity;
  }
  const final = softmax(scores);
  const kept = new Map<number, number>();
  for (let i = 0; i < v; i++) if (final[i] > 0) kept.set(i, final[i]);
  return kept;
}

/** Logits a language model might give: Zipf-like, with a few exact ties. */
function zipfLogits(v: number, seed: number, ties = false): Float32Array {
  const rng = new Prng(seed);
  const logits = new Float32Array(v);
  for (let i = 0; i < v; i++) logits[i] = -1.1 * Math.log(1 + rng.nextFloat() * v) + 0.3 * rng.nextFloat();
  if (ties) for (let i = 0; i < v; i += 7) logits[i] = logits[(i * 13) % v];
  return logits;
}

function expectCandidatesMatch(logits: Float32Array, o: { temperature: number; topK: number; topP: number; minP?: number }, label: string): void {
  const got = candidates(logits, o);
  const want = transformersWarpers(logits, o);
  expect([...got.ids], `${label}: the tokens kept`).toEqual([...want.keys()].sort((a, b) => a - b));
  got.ids.forEach((id, j) => expect(Math.abs(got.probs[j] - want.get(id)!), `${label}: token ${id}`).toBeLessThan(1e-12));
}

describe('sampling', () => {
  const logits = Float32Array.from([1, 3, 2, 3, -1]);

  it('temperature 0 is argmax (first of ties)', () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, { temperature: 0, topP: 0.1 }, new Prng(1))).toBe(1);
  });

  it('softmax with temperature matches the closed form', () => {
    const p = candidates([0, Math.log(3)], { temperature: 1, topP: 1 }).probs;
    expect(p[0]).toBeCloseTo(0.25, 15);
    expect(p[1]).toBeCloseTo(0.75, 15);
    const q = candidates([0, Math.log(3)], { temperature: 0.5, topP: 1 }).probs; // 1 : 9
    expect(q[1]).toBeCloseTo(0.9, 15);
  });

  it("keeps the tokens transformers' temperature, top-k and top-p keep, with its probabilities", () => {
    for (const [v, seed] of [[50, 1], [1000, 2], [5000, 3]] as const) {
      for (const ties of [false, true]) {
        const l = zipfLogits(v, seed, ties);
        for (const o of [
          { temperature: 1, topK: 50, topP: 1 }, // transformers' defaults once sampling
          { temperature: 0.7, topK: 20, topP: 0.8 }, // Qwen2.5-Instruct's file
          { temperature: 0.6, topK: 50, topP: 0.9 }, // Llama-3-Instruct's file and top_k's default
          { temperature: 1.3, topK: 0, topP: 0.95 }, // top-k off: the nucleus of the whole vocabulary
          { temperature: 0.8, topK: 0, topP: 1 }, // everything
          { temperature: 1, topK: 3, topP: 0.2 },
          { temperature: 2, topK: 1, topP: 1 },
          { temperature: 1, topK: v + 5, topP: 0.5 }, // k past the vocabulary keeps all
          { temperature: 1, topK: 0, topP: 0 }, // top-p 0: the most likely token alone
        ]) {
          expectCandidatesMatch(l, o, `V=${v}${ties ? ' with ties' : ''} ${JSON.stringify(o)}`);
        }
      }
    }
  });

  it("then keeps the tokens transformers' min-p keeps: at least min_p times the most likely one's probability, after temperature, top-k and top-p", () => {
    for (const [v, seed] of [[50, 11], [1000, 12], [5000, 13]] as const) {
      const l = zipfLogits(v, seed);
      for (const o of [
        { temperature: 1, topK: 0, topP: 1, minP: 0.05 }, // min-p alone, over the whole vocabulary
        { temperature: 0.7, topK: 0, topP: 1, minP: 0.1 }, // a lower temperature sharpens, so min-p cuts more
        { temperature: 1.5, topK: 0, topP: 1, minP: 0.1 }, // and a higher one less: it acts after the temperature
        { temperature: 1, topK: 50, topP: 0.9, minP: 0.2 }, // after top-k and top-p
        { temperature: 0.9, topK: 20, topP: 1, minP: 1 }, // 1: only the most likely (and any tied with it)
        { temperature: 1, topK: 0, topP: 1, minP: 0 }, // 0: nothing removed
      ]) {
        expectCandidatesMatch(l, o, `V=${v} ${JSON.stringify(o)}`);
      }
    }
    // its cut moves with the temperature: at T=1 p(1)/p(2) = 1/e keeps token 1 at min-p 0.3, at T=0.5 (1/e² = 0.135) it does not
    const l = [0, 1, 2];
    expect([...candidates(l, { temperature: 1, topP: 1, minP: 0.3 }).ids]).toEqual([1, 2]);
    expect([...candidates(l, { temperature: 0.5, topP: 1, minP: 0.3 }).ids]).toEqual([2]);
  });

  it('keeps every token tied with the k-th, as transformers does', () => {
    const tied = Float32Array.from([0.5, 2, 1, 1, 1, -3]);
    expect([...candidates(tied, { temperature: 1, topK: 2, topP: 1 }).ids]).toEqual([1, 2, 3, 4]);
    expectCandidatesMatch(tied, { temperature: 1, topK: 2, topP: 1 }, 'ties at the cut');
  });

  it('the nucleus is the one a full sort and a running sum find, to the last token', () => {
    const byFullSort = (p: Float64Array, target: number) => {
      const order = [...p.keys()].sort((a, b) => p[b] - p[a] || a - b);
      const kept: number[] = [];
      let cumulative = 0;
      for (const id of order) {
        kept.push(id);
        cumulative += p[id];
        if (cumulative >= target) break;
      }
      return kept;
    };
    const rng = new Prng(17);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rng.nextFloat() * (trial < 100 ? 40 : 3000));
      const shape = trial % 3; // flat, peaked, many ties
      const w = Float64Array.from({ length: n }, () => (shape === 0 ? rng.nextFloat() : shape === 1 ? Math.exp(-20 * rng.nextFloat()) : Math.ceil(rng.nextFloat() * 4)));
      const sum = w.reduce((a, b) => a + b, 0);
      const p = w.map((x) => x / sum);
      const target = [0, 1, rng.nextFloat(), 0.9, 0.999][trial % 5];
      const ids = Int32Array.from(p.keys());
      expect([...nucleusOf(ids, p, target)], `trial ${trial}: n ${n}, target ${target}`).toEqual(byFullSort(p, target));
    }
    // the sums reach a target exactly: 0.5 + 0.3 against 0.8
    const exact = Float64Array.from([0.1, 0.5, 0.3, 0.1]);
    for (const target of [0.5, 0.6, 0.8, 0.81, 1]) expect([...nucleusOf(Int32Array.from([0, 1, 2, 3]), exact, target)]).toEqual(byFullSort(exact, target));
  });

  it('the k-th largest is the sorted one, duplicates counted', () => {
    const rng = new Prng(3);
    for (let trial = 0; trial < 50; trial++) {
      const values = Float32Array.from({ length: 1 + Math.floor(rng.nextFloat() * 500) }, () => Math.round(rng.nextFloat() * 40) / 4);
      const k = 1 + Math.floor(rng.nextFloat() * values.length);
      expect(kthLargest(values, k)).toBe([...values].sort((a, b) => b - a)[k - 1]);
    }
    expect(() => kthLargest([1, 2], 3)).toThrow(/k must be an integer in \[1, 2\]/);
  });

  it('draws with the right frequencies and never outside top-k or the nucleus', () => {
    const l = [0, Math.log(3), Math.log(6)]; // probabilities 0.1, 0.3, 0.6
    const rng = new Prng(5);
    const n = 30_000;
    const frequencies = (o: SamplingOptions) => {
      const counts = [0, 0, 0];
      for (let i = 0; i < n; i++) counts[sampleToken(l, o, rng)]++;
      return counts.map((c) => c / n);
    };
    const all = frequencies({ temperature: 1, topP: 1 });
    [0.1, 0.3, 0.6].forEach((p, id) => expect(all[id]).toBeCloseTo(p, 1));
    const nucleus = frequencies({ temperature: 1, topP: 0.85 }); // 0.6 + 0.3 reach 0.85 without the 0.1 token
    expect(nucleus[0]).toBe(0);
    expect(nucleus[1]).toBeCloseTo(1 / 3, 1);
    const topTwo = frequencies({ temperature: 1, topK: 2, topP: 1 });
    expect(topTwo[0]).toBe(0);
    expect(topTwo[2]).toBeCloseTo(2 / 3, 1);
    // temperature 0.5 squares the odds: 1 : 9 : 36 (renormalized over the top two: 9 : 36)
    const sharp = frequencies({ temperature: 0.5, topK: 2, topP: 1 });
    expect(sharp[2]).toBeCloseTo(36 / 45, 1);
  });

  it('the same seed gives the same draws', () => {
    const draw = (seed: number, o: SamplingOptions) => {
      const rng = new Prng(seed);
      return Array.from({ length: 40 }, () => sampleToken(zipfLogits(300, 4), o, rng));
    };
    for (const o of [{ temperature: 1.3, topP: 0.95 }, { temperature: 1, topK: 50, topP: 1 }, { temperature: 0.9, topK: 0, topP: 1 }]) {
      expect(draw(9, o)).toEqual(draw(9, o));
      expect(draw(9, o)).not.toEqual(draw(10, o));
    }
  });

  it('rejects bad settings', () => {
    expect(() => sampleToken(logits, { temperature: -1, topP: 1 }, new Prng(1))).toThrow(/temperature must be a number >= 0, got -1/);
    expect(() => sampleToken(logits, { temperature: 1, topP: 1.5 }, new Prng(1))).toThrow(/top-p must be in \[0, 1\], got 1.5/);
    expect(() => sampleToken(logits, { temperature: 1, topP: 1, topK: 2.5 }, new Prng(1))).toThrow(/top-k must be a whole number >= 0 \(0: off\), got 2.5/);
    expect(() => sampleToken(logits, { temperature: 1, topP: 1, topK: -1 }, new Prng(1))).toThrow(/top-k/);
    for (const minP of [-0.1, 1.5, Number.NaN]) expect(() => sampleToken(logits, { temperature: 1, topP: 1, minP }, new Prng(1))).toThrow(`min-p must be in [0, 1] (0: off), got ${minP}`);
  });
});
