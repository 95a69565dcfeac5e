// transformers' NoRepeatNGramLogitsProcessor (no_repeat_ngram_size): no
// n-gram may occur twice in the sequence, the prompt included (for a
// decoder-only model it is all of input_ids). Before each token, every token
// that would complete an n-gram already seen is banned (its logit -inf): the
// ones that followed the last n-1 tokens wherever those n-1 occurred before.
// It runs beside the repetition penalty, before temperature and the other
// warpers, and in greedy decoding too.
//
// transformers matches the last n-1 tokens against every window of the
// sequence at every step, which grows with the sequence. Here each n-gram is
// recorded once, when its last token arrives, under its first n-1 tokens:
// a step costs O(n) plus the tokens it bans, however long the sequence.

export class NoRepeatNGram {
  /** the sequence so far (prompt and answer) */
  private readonly ids: number[] = [];
  /** each (n-1)-token prefix seen, as a key, and the tokens that followed it */
  private readonly followers = new Map<string, Set<number>>();

  /** `size`: n (> 0); 0 bans nothing. `ids`: the prompt's ids. */
  constructor(readonly size: number, ids: Iterable<number> = []) {
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`no-repeat n-gram size must be a whole number >= 0 (0: off), got ${size}`);
    for (const id of ids) this.add(id);
  }

  /** A token joins the sequence (a generated one). */
  add(id: number): void {
    if (this.size === 0) return;
    this.ids.push(id);
    const length = this.ids.length;
    if (length < this.size) return;
    // the n-gram this token completes: ids[length - n, length)
    const key = this.keyOf(length - this.size, length - 1);
    let next = this.followers.get(key);
    if (next === undefined) this.followers.set(key, (next = new Set()));
    next.add(id);
  }

  /** The tokens the next one may not be (none before the sequence holds n tokens, as in transformers). */
  banned(): ReadonlySet<number> {
    const length = this.ids.length;
    if (this.size === 0 || length < this.size) return EMPTY;
    // the last n-1 tokens, as the start of the n-gram the next token would complete
    return this.followers.get(this.keyOf(length - this.size + 1, length)) ?? EMPTY;
  }

  /** Bans, in place, the tokens that would repeat an n-gram (one row: the next token's scores). */
  apply(logits: Float32Array | Float64Array): void {
    for (const id of this.banned()) logits[id] = Number.NEGATIVE_INFINITY;
  }

  /** ids[from, to) as a map key ("" for n = 1: every token seen then follows the empty prefix). */
  private keyOf(from: number, to: number): string {
    let key = '';
    for (let i = from; i < to; i++) key += i === from ? `${this.ids[i]}` : `,${this.ids[i]}`;
    return key;
  }
}

const EMPTY: ReadonlySet<number> = new Set();
