// transformers' RepetitionPenaltyLogitsProcessor: every distinct token id of
// the sequence so far (the prompt included: for a decoder-only model it is
// all of input_ids) has its logit made less likely, once whatever its count:
// a negative logit is multiplied by the penalty, any other divided by it.
// It runs before temperature and the other warpers, and in greedy decoding
// too, so a model whose generation_config.json sets it (Qwen2.5-Instruct:
// 1.05) answers greedily as model.generate() does only with it.

export class RepetitionPenalty {
  private readonly seen = new Set<number>();
  /** the distinct ids, in the order first seen (the order the logits are touched in) */
  private readonly ids: number[] = [];

  /** `penalty` > 0; 1 changes nothing. `ids`: the prompt's ids. */
  constructor(readonly penalty: number, ids: Iterable<number> = []) {
    if (!(penalty > 0) || !Number.isFinite(penalty)) throw new Error(`repetition penalty must be a number > 0 (1: off), got ${penalty}`);
    for (const id of ids) this.add(id);
  }

  /** A token joins the sequence (a generated one). */
  add(id: number): void {
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.ids.push(id);
  }

  /** Penalizes `logits` in place (one row: the next token's scores). */
  apply(logits: Float32Array | Float64Array): void {
    const p = this.penalty;
    if (p === 1) return;
    for (const id of this.ids) {
      const l = logits[id];
      logits[id] = l < 0 ? l * p : l / p;
    }
  }
}
