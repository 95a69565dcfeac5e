// The n-gram ban against transformers' NoRepeatNGramLogitsProcessor read
// plainly: with cur_len ids, nothing before ngram_size of them; else the last
// ngram_size - 1 ids are matched against the first ngram_size - 1 of every
// window of ngram_size ids, and each matching window bans its last id (-inf).
// The reference rescans the whole sequence at every step, as transformers
// does; the class under test keeps an index instead.
import { describe, expect, it } from 'vitest';
import { Prng } from '../random/prng.js';
import { NoRepeatNGram } from './no-repeat-ngram.js';

/** transformers' banned ids for the next token after `ids`, by a scan of every window. */
function transformersBanned(ids: readonly number[], n: number): Set<number> {
  const banned = new Set<number>();
  const length = ids.length;
  if (length < n) return banned;
  const prefix = ids.slice(length + 1 - n);
  for (let start = 0; start + n <= length; start++) {
    let match = true;
    for (let j = 0; j < n - 1; j++) if (ids[start + j] !== prefix[j]) match = false;
    if (match) banned.add(ids[start + n - 1]);
  }
  return banned;
}

/** A sequence over a small alphabet, so that n-grams repeat often. */
function sequence(length: number, alphabet: number, seed: number): number[] {
  const rng = new Prng(seed);
  return Array.from({ length }, () => Math.floor(rng.nextFloat() * alphabet));
}

describe('NoRepeatNGram', () => {
  it("bans, before every token, exactly the ids transformers' processor bans (prompt and answer, n = 1 to 5)", () => {
    for (const n of [1, 2, 3, 4, 5]) {
      for (const [alphabet, seed] of [[3, 1], [6, 2], [40, 3]] as const) {
        const ids = sequence(300, alphabet, seed + 10 * n);
        // the first 20 ids as the prompt, the rest arrive one at a time as generated ones
        const ban = new NoRepeatNGram(n, ids.slice(0, 20));
        for (let length = 20; length <= ids.length; length++) {
          const want = transformersBanned(ids.slice(0, length), n);
          expect([...ban.banned()].sort((a, b) => a - b), `n ${n}, alphabet ${alphabet}, after ${length} ids`).toEqual([...want].sort((a, b) => a - b));
          if (length < ids.length) ban.add(ids[length]);
        }
      }
    }
  });

  it('sets the banned logits to -inf and leaves the others as they were', () => {
    // "the cat sat on the cat": after "the", "cat" would repeat the bigram "the cat"
    const [the, cat, sat, on] = [5, 7, 2, 9];
    const ban = new NoRepeatNGram(2, [the, cat, sat, on, the]);
    const logits = Float32Array.from({ length: 12 }, (_, i) => i - 4);
    const before = Float32Array.from(logits);
    ban.apply(logits);
    expect(logits[cat]).toBe(Number.NEGATIVE_INFINITY);
    for (let i = 0; i < logits.length; i++) if (i !== cat) expect(logits[i], `id ${i}`).toBe(before[i]);
    // fewer ids than n: nothing to ban yet, as in transformers
    expect([...new NoRepeatNGram(3, [the, cat]).banned()]).toEqual([]);
    // 0 is off
    const off = new NoRepeatNGram(0, [the, cat, the, cat]);
    off.add(the);
    expect([...off.banned()]).toEqual([]);
  });

  it('refuses a size that is not a whole number >= 0', () => {
    for (const bad of [-1, 2.5, Number.NaN]) expect(() => new NoRepeatNGram(bad)).toThrow(`no-repeat n-gram size must be a whole number >= 0 (0: off), got ${bad}`);
  });
});
