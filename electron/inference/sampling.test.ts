// Token choice against a plain float64 reading of transformers' warpers
// (TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper ->
// MinPLogitsWarper -> TypicalLogitsWarper -> EpsilonLogitsWarper ->
// EtaLogitsWarper, then softmax: generation/logits_process.py, in the order
// generation/utils.py _get_logits_processor appends them when do_sample),
// written here with full sorts, so the partial selections in
// partial-select.ts are checked against the obvious algorithm on the same
// logits.
import { describe, expect, it } from 'vitest';
import { Prng } from '../random/prng.js';
import { kthLargest, nucleusOf } from './partial-select.js';
import { argmax, candidates, sampleToken, type SamplingOptions } from './sampling.js';

/** The settings the reference reads: transformers' names for what each warper takes. */
interface WarperSettings {
  temperature: number;
  topK: number;
  topP: number;
  minP?: number;
  typicalP?: number;
  epsilonCutoff?: number;
  etaCutoff?: number;
}

/** transformers' warpers in float64 with full sorts: the probability of every token left (by id). */
function transformersWarpers(logits: ArrayLike<number>, o: WarperSettings): Map<number, number> {
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
  // log_softmax as torch computes it: scores - logsumexp(scores) (-inf stays -inf)
  const logSoftmax = (s: Float64Array) => {
    const max = Math.max(...s);
    const lse = max + Math.log(s.reduce((a, x) => a + Math.exp(x - max), 0));
    return s.map((x) => x - lse);
  };
  if (o.typicalP !== undefined && o.typicalP < 1) {
    // TypicalLogitsWarper.__call__, line by line
    const normalized = logSoftmax(scores);
    const p = normalized.map((x) => Math.exp(x));
    // ent = -(normalized * p).nansum(): -inf * 0 is NaN, left out
    let ent = 0;
    for (let i = 0; i < v; i++) if (!Number.isNaN(normalized[i] * p[i])) ent -= normalized[i] * p[i];
    const shifted = normalized.map((x) => Math.abs(-x - ent));
    // torch.sort(shifted_scores) ascending (+inf last; inf - inf is NaN, so ties fall to the ids)
    const sortedIndices = [...shifted.keys()].sort((a, b) => shifted[a] - shifted[b] || a - b);
    const sortedScores = sortedIndices.map((i) => shifted[i]);
    // cumulative_probs = scores.gather(sorted_indices).softmax().cumsum()
    const sortedProbs = softmax(Float64Array.from(sortedIndices, (i) => scores[i]));
    const cumulative: number[] = [];
    sortedProbs.reduce((sum, x) => (cumulative.push(sum + x), sum + x), 0);
    // last_ind = (cumulative_probs < mass).sum(), clamped to the last index
    const lastInd = Math.min(cumulative.filter((c) => c < o.typicalP!).length, v - 1);
    // remove sorted_scores > sorted_scores[last_ind]; the first min_tokens_to_keep (1) stay; scatter back
    const remove = sortedScores.map((x) => x > sortedScores[lastInd]);
    remove[0] = false;
    sortedIndices.forEach((i, r) => { if (remove[r]) scores[i] = -Infinity; });
  }
  // EpsilonLogitsWarper and EtaLogitsWarper: remove probabilities < the floor unless scores reach topk(scores, 1)
  const floorCut = (floorOf: (p: Float64Array) => number) => {
    const p = softmax(scores);
    const floor = floorOf(p);
    const top = Math.max(...scores);
    for (let i = 0; i < v; i++) if (p[i] < floor && scores[i] < top) scores[i] = -Infinity;
  };
  if (o.epsilonCutoff !== undefined && o.epsilonCutoff > 0) floorCut(() => o.epsilonCutoff!);
  if (o.etaCutoff !== undefined && o.etaCutoff > 0) {
    floorCut((p) => {
      // Categorical(logits=scores).entropy(): logits normalized, clamped to finfo.min, -(logits * probs).sum()
      const logits = logSoftmax(scores).map((x) => Math.max(x, -Number.MAX_VALUE));
      const entropy = -logits.reduce((a, x, i) => a + x * p[i], 0);
      return Math.min(o.etaCutoff!, Math.sqrt(o.etaCutoff!) * Math.exp(-entropy));
    });
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

/** candidates() keeps the tokens the reference keeps, with its probabilities (a token banned to -inf may stay at probability 0). */
function expectCandidatesMatch(logits: Float32Array, o: WarperSettings, label: string): void {
  const got = candidates(logits, o);
  const want = transformersWarpers(logits, o);
  const drawable = [...got.ids].filter((_, j) => got.probs[j] > 0);
  got.ids.forEach((id, j) => { if (got.probs[j] === 0) expect(logits[id], `${label}: token ${id} kept at probability 0`).toBe(-Infinity); });
  expect(drawable, `${label}: the tokens kept`).toEqual([...want.keys()].sort((a, b) => a - b));
  got.ids.forEach((id, j) => { if (got.probs[j] > 0) expect(Math.abs(got.probs[j] - want.get(id)!), `${label}: token ${id}`).toBeLessThan(1e-12); });
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

  it("then keeps the tokens transformers' typical-p keeps: most typical first (|-log p - H|) until typical_p, ties with the last one, after the other warpers", () => {
    for (const [v, seed] of [[50, 21], [1000, 22], [5000, 23]] as const) {
      for (const ties of [false, true]) {
        const l = zipfLogits(v, seed, ties);
        for (const o of [
          { temperature: 1, topK: 0, topP: 1, typicalP: 0.9 }, // typical-p alone, over the whole vocabulary
          { temperature: 0.7, topK: 0, topP: 1, typicalP: 0.5 }, // its entropy is the one after the temperature
          { temperature: 1.3, topK: 0, topP: 1, typicalP: 0.2 },
          { temperature: 1, topK: 50, topP: 1, typicalP: 0.95 }, // after transformers' top_k default
          { temperature: 0.8, topK: 40, topP: 0.9, minP: 0.05, typicalP: 0.9 }, // after top-k, top-p and min-p
          { temperature: 1, topK: 0, topP: 1, typicalP: 1e-9 }, // the most typical token alone (with any exactly as typical)
          { temperature: 1, topK: 0, topP: 1, typicalP: 1 - 2 ** -53 }, // mass at the last float below 1: the clamp of last_ind when the sum falls short
          { temperature: 1, topK: 0, topP: 1, typicalP: 1 }, // 1: off
        ]) {
          expectCandidatesMatch(l, o, `V=${v}${ties ? ' with ties' : ''} ${JSON.stringify(o)}`);
        }
      }
    }
    // by hand: logits [1, 0, 0, 0, 0] give p = e/(e+4) = 0.405 and four of 1/(e+4) = 0.149, entropy H = 1.500;
    // the four (surprisal 1.905, 0.405 from H) are more typical than the likeliest (0.905, 0.595 from H)
    const l = [1, 0, 0, 0, 0];
    // 0.1: the first of the four reaches it; the three as typical as it stay; the most likely token goes
    expect([...candidates(l, { temperature: 1, topP: 1, typicalP: 0.1 }).ids]).toEqual([1, 2, 3, 4]);
    expect([...candidates(l, { temperature: 1, topP: 1, typicalP: 0.1 }).probs]).toEqual([0.25, 0.25, 0.25, 0.25]);
    // the four hold 4/(e+4) = 0.5954: 0.59 is reached among them, 0.6 only with the likeliest
    expect([...candidates(l, { temperature: 1, topP: 1, typicalP: 0.59 }).ids]).toEqual([1, 2, 3, 4]);
    expect([...candidates(l, { temperature: 1, topP: 1, typicalP: 0.6 }).ids]).toEqual([0, 1, 2, 3, 4]);
    // a token banned to -inf (the n-gram ban) is the least typical of all: it never stays
    const banned = Float32Array.from([1, 0, -Infinity, 0.5, -Infinity, 0.2]);
    expectCandidatesMatch(banned, { temperature: 1, topK: 0, topP: 1, typicalP: 0.9 }, 'banned tokens');
    expect([...candidates(banned, { temperature: 1, topK: 0, topP: 1, typicalP: 0.5 }).ids]).not.toContain(2);
  });

  it("then drops the tokens below epsilon_cutoff, then below eta's floor min(eta, sqrt(eta) e^-H), never the most likely, as transformers does", () => {
    for (const [v, seed] of [[50, 31], [1000, 32], [5000, 33]] as const) {
      for (const ties of [false, true]) {
        const l = zipfLogits(v, seed, ties);
        for (const o of [
          { temperature: 1, topK: 0, topP: 1, epsilonCutoff: 3e-4 }, // the paper's range
          { temperature: 1, topK: 0, topP: 1, epsilonCutoff: 0.02 },
          { temperature: 1, topK: 0, topP: 1, etaCutoff: 2e-3 },
          { temperature: 0.6, topK: 0, topP: 1, etaCutoff: 0.05 }, // its entropy is the one after the temperature
          { temperature: 1, topK: 0, topP: 1, epsilonCutoff: 0.999 }, // nothing reaches it: the most likely stays
          // every warper, in transformers' order: eta's entropy is the one epsilon left
          { temperature: 1, topK: 80, topP: 0.97, minP: 0.01, typicalP: 0.97, epsilonCutoff: 2e-3, etaCutoff: 0.01 },
          { temperature: 0.9, topK: 0, topP: 1, typicalP: 0.9, etaCutoff: 0.02 },
        ]) {
          expectCandidatesMatch(l, o, `V=${v}${ties ? ' with ties' : ''} ${JSON.stringify(o)}`);
        }
      }
    }
    // by hand: p = 0.1, 0.3, 0.6, entropy H = 0.8979; eta 0.25: floor min(0.25, 0.5 e^-H = 0.2037) drops the 0.1 token,
    // eta 0.01: floor 0.01 (below 0.1 e^-H = 0.0407) drops none
    const l = [0, Math.log(3), Math.log(6)];
    const h = -(0.1 * Math.log(0.1) + 0.3 * Math.log(0.3) + 0.6 * Math.log(0.6));
    expect(0.5 * Math.exp(-h)).toBeCloseTo(0.2037, 4);
    expect([...candidates(l, { temperature: 1, topP: 1, etaCutoff: 0.25 }).ids]).toEqual([1, 2]);
    expect([...candidates(l, { temperature: 1, topP: 1, etaCutoff: 0.01 }).ids]).toEqual([0, 1, 2]);
    expect([...candidates(l, { temperature: 1, topP: 1, epsilonCutoff: 0.3 }).ids]).toEqual([1, 2]); // 0.3 >= 0.3 stays
    // eta reads the entropy epsilon leaves: p = 0.45, 0.2, 0.2 and 200 tokens of 0.00075; epsilon 1e-3 drops those 200,
    // so H falls from 2.08 to 1.02 and eta 0.5's floor rises from 0.088 to 0.256, above the two 0.2 tokens (0.235 renormalized)
    const tail = Float64Array.from({ length: 203 }, (_, i) => Math.log(i === 0 ? 0.45 : i < 3 ? 0.2 : 0.00075));
    expect([...candidates(tail, { temperature: 1, topK: 0, topP: 1, etaCutoff: 0.5 }).ids]).toEqual([0, 1, 2]);
    expect([...candidates(tail, { temperature: 1, topK: 0, topP: 1, epsilonCutoff: 1e-3, etaCutoff: 0.5 }).ids]).toEqual([0]);
    expectCandidatesMatch(Float32Array.from(tail), { temperature: 1, topK: 0, topP: 1, epsilonCutoff: 1e-3, etaCutoff: 0.5 }, 'eta after epsilon');
    // a floor above every probability keeps the most likely, and every token tied with it
    expect([...candidates([2, 2, 1, 0], { temperature: 1, topP: 1, epsilonCutoff: 0.9 }).ids]).toEqual([0, 1]);
  });

  it('greedy decoding ignores typical-p and the cutoffs, as transformers adds their warpers only when sampling', () => {
    const l = [1, 0, 0, 0, 0]; // typical-p 0.1 would drop token 0, the argmax
    for (const o of [{ typicalP: 0.1 }, { epsilonCutoff: 0.5 }, { etaCutoff: 0.5 }]) expect(sampleToken(l, { temperature: 0, topP: 1, ...o }, new Prng(1))).toBe(0);
    // sampled, token 0 is never drawn at typical-p 0.1
    const rng = new Prng(2);
    for (let i = 0; i < 200; i++) expect(sampleToken(l, { temperature: 1, topP: 1, typicalP: 0.1 }, rng)).not.toBe(0);
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
    // transformers' warpers refuse anything outside (0, 1); 1 (typical) and 0 (the cutoffs) add none
    for (const typicalP of [0, -0.5, 1.5, Number.NaN]) expect(() => sampleToken(logits, { temperature: 1, topP: 1, typicalP }, new Prng(1))).toThrow(`typical-p must be in (0, 1] (1: off), got ${typicalP}`);
    for (const epsilonCutoff of [-1e-4, 1, Number.NaN]) expect(() => sampleToken(logits, { temperature: 1, topP: 1, epsilonCutoff }, new Prng(1))).toThrow(`epsilon cutoff must be in [0, 1) (0: off), got ${epsilonCutoff}`);
    for (const etaCutoff of [-1e-4, 1, 2]) expect(() => sampleToken(logits, { temperature: 1, topP: 1, etaCutoff }, new Prng(1))).toThrow(`eta cutoff must be in [0, 1) (0: off), got ${etaCutoff}`);
  });
});
