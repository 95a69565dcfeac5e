// The selections sampling needs from a whole vocabulary (49k-152k entries,
// once per generated token) without sorting it: the k-th largest logit
// (top-k's cut), and the shortest run of tokens in some order whose mass
// reaches a target (top-p's most likely tokens; typical-p's most typical
// ones). Both are linear on average; only the few tokens that are kept are
// ever sorted.
//
// Each order is one fixed order: ties go to the lower id, so a seed always
// draws the same tokens.

/** The k-th largest of `values` (duplicates counted, as torch.topk does); 1 <= k <= values.length. */
export function kthLargest(values: ArrayLike<number>, k: number): number {
  if (!Number.isInteger(k) || k < 1 || k > values.length) throw new Error(`kthLargest: k must be an integer in [1, ${values.length}], got ${k}`);
  // A min-heap of the k largest seen so far: heap[0] is the smallest of them.
  // Most values fail the one comparison with heap[0], so this is ~one pass.
  const heap = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let at = i;
    heap[at] = values[i];
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (heap[parent] <= heap[at]) break;
      const t = heap[parent];
      heap[parent] = heap[at];
      heap[at] = t;
      at = parent;
    }
  }
  for (let i = k; i < values.length; i++) {
    const v = values[i];
    if (v <= heap[0]) continue;
    // replace the smallest and sift it down
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= k) break;
      const right = left + 1;
      const child = right < k && heap[right] < heap[left] ? right : left;
      if (heap[child] >= v) break;
      heap[at] = heap[child];
      at = child;
    }
    heap[at] = v;
  }
  return heap[0];
}

/**
 * The nucleus of `p` (probabilities indexed by token id, over the tokens in
 * `ids`): the shortest run of tokens, most likely first, whose mass reaches
 * `target`, as a full sort and a running sum would find it (the same
 * additions in the same order, so the same cut to the last bit). `ids` is
 * reordered; the nucleus comes back most likely first, always at least one
 * token.
 */
export function nucleusOf(ids: Int32Array, p: Float64Array, target: number): Int32Array {
  return prefixReaching(ids, p, 'descending', p, target);
}

/**
 * The shortest run of the tokens in `ids`, taken in the order of `rank`
 * (indexed by token id; ties: the lower id first), whose mass (`p`, indexed
 * by token id) reaches `target`, as a full sort and a running sum would find
 * it (the same additions in the same order, so the same cut to the last
 * bit). `ids` is reordered; the run comes back in that order, always at
 * least one token; every token, in that order, when their whole mass is short
 * of `target`. Top-p ranks by probability, descending; typical-p by the
 * distance of the surprisal from the entropy, ascending.
 *
 * The order is a sign and an array, not a comparator passed in: one call
 * site for both warpers, so neither slows the other's comparisons.
 */
export function prefixReaching(ids: Int32Array, rank: Float64Array, direction: 'ascending' | 'descending', p: Float64Array, target: number): Int32Array {
  const n = ids.length;
  if (n === 0) throw new Error('prefixReaching: no tokens to choose from');
  const sign = direction === 'ascending' ? 1 : -1;
  // a before b: a smaller signed rank, or the same with the lower id (negation is exact: the same order as p[a] > p[b])
  const better = (a: number, b: number) => {
    const x = sign * rank[a];
    const y = sign * rank[b];
    return x < y || (x === y && a < b);
  };
  // Quickselect by mass: ids[0, lo) are the lo best tokens, with mass
  // `before` < target; the cut lies in (lo, hi].
  let lo = 0;
  let hi = n;
  let before = 0;
  while (hi - lo > 16) {
    const pivotAt = medianOfThree(ids, lo, lo + ((hi - lo) >> 1), hi - 1, better);
    const pivot = ids[pivotAt];
    ids[pivotAt] = ids[hi - 1];
    ids[hi - 1] = pivot;
    let i = lo;
    let mass = 0;
    for (let j = lo; j < hi - 1; j++) {
      const id = ids[j];
      if (better(id, pivot)) {
        ids[j] = ids[i];
        ids[i] = id;
        i++;
        mass += p[id];
      }
    }
    ids[hi - 1] = ids[i];
    ids[i] = pivot;
    // [lo, i): better than the pivot; i: the pivot; (i, hi): worse
    if (before + mass >= target) {
      hi = i; // the cut is among the better ones (i > lo: before alone is below target)
    } else {
      before += mass + p[pivot];
      lo = i + 1;
      if (before >= target) {
        hi = lo;
        break;
      }
    }
  }
  // The sums above ran in partition order; walk the candidates in sorted order
  // so the cut is the running sum's, then extend one best token at a time if
  // rounding left that sum just short.
  let count = hi;
  ids.subarray(0, count).sort((a, b) => {
    const x = sign * rank[a];
    const y = sign * rank[b];
    return x < y ? -1 : x > y ? 1 : a - b;
  });
  let cumulative = 0;
  for (let r = 0; r < n; r++) {
    if (r === count) {
      let best = r;
      for (let j = r + 1; j < n; j++) if (better(ids[j], ids[best])) best = j;
      const t = ids[r];
      ids[r] = ids[best];
      ids[best] = t;
      count += 1;
    }
    cumulative += p[ids[r]];
    if (cumulative >= target) return ids.subarray(0, r + 1);
  }
  return ids; // the whole mass is short of target (rounding at target 1): every token
}

function medianOfThree(ids: Int32Array, a: number, b: number, c: number, better: (x: number, y: number) => boolean): number {
  const [x, y, z] = [ids[a], ids[b], ids[c]];
  if (better(x, y)) {
    if (better(y, z)) return b;
    return better(x, z) ? c : a;
  }
  if (better(x, z)) return a;
  return better(y, z) ? c : b;
}
