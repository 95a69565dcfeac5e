// A seeded train/eval split. Like datasets' train_test_split, the eval part
// has ceil(fraction * n) examples; both parts keep the file order so that
// messages and metrics stay easy to relate to the data.
import { Prng, shuffledIndices } from '../random/prng.js';
import { countOf } from '../text/plural.js';

/** The PRNG stream used for the split (kept apart from the per-epoch shuffles). */
const SPLIT_STREAM = 0x5b117;

export interface Split<T> {
  train: T[];
  eval: T[];
}

export function splitTrainEval<T>(items: readonly T[], fraction: number, seed: number): Split<T> {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`eval split must be in [0, 1), got ${fraction}`);
  if (fraction === 0) return { train: items.slice(), eval: [] };
  const evalCount = Math.ceil(fraction * items.length);
  if (evalCount >= items.length) {
    throw new Error(
      `--eval-split ${fraction} of ${countOf(items.length, 'example')} leaves nothing to train on; ` +
        'use a smaller fraction or more data',
    );
  }
  const order = shuffledIndices(items.length, new Prng(seed, SPLIT_STREAM));
  const evalSet = new Set(order.slice(0, evalCount));
  const train: T[] = [];
  const evalItems: T[] = [];
  items.forEach((item, i) => (evalSet.has(i) ? evalItems : train).push(item));
  return { train, eval: evalItems };
}
