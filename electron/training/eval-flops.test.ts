// An evaluation's FLOPs: the forward alone, checked against a count written
// out by hand for a tiny spec, and for every method against a GEMM-by-GEMM
// enumeration of engine.evaluate read off the batches sequentialBatches
// really builds (padding, masked labels, packed segments). evalWork is one
// evaluation times the trainer's number of evaluations.
import { describe, expect, it } from 'vitest';
import { TINY_FLOP_SPEC } from '../testing/flop-fixtures.js';
import type { Batch, LoraTarget, ModelSpec } from '../engine/native.js';
import { sequentialBatches } from './batches.js';
import type { Example } from './data.js';
import { evalWork } from './eval-work.js';
import { evalBatchFlops, microBatchFlops, microBatchShapeOf, type FlopSettings } from './step-flops.js';
import type { TrainMethod } from './config.js';

const tiny = TINY_FLOP_SPEC;
const settings = (method: TrainMethod, extra: Partial<FlopSettings> = {}): FlopSettings => ({
  method, lora: null, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false, ...extra,
});
const example = (n: number, masked = 0, segments?: number[]): Example => ({
  inputIds: Int32Array.from({ length: n }, (_, i) => i + 1),
  labels: Int32Array.from({ length: n }, (_, i) => (i < masked ? -100 : i + 1)),
  segments: segments && Int32Array.from(segments),
  source: `rows.jsonl:${n}`,
});

describe('evalBatchFlops: the forward alone', () => {
  it('matches a count by hand: LoRA r=4 on q and v, rows of 5 and 3 tokens (padded to 5)', () => {
    const lora = settings('lora', { lora: { rank: 4, targets: ['q_proj', 'v_proj'], layers: null } });
    // R = 2 rows x 5 = 10 positions; C = 4 + 2 counted labels (the first token of a row predicts nothing)
    const linears = 2 * 10 * (16 * 16 + 16 * 8 + 16 * 8 + 16 * 16 + 16 * 24 + 16 * 24 + 24 * 16) * 2; // 76,800
    const loraBranch = (2 * 10 * 4 * (16 + 16) + 2 * 10 * 4 * (16 + 8)) * 2; // 8,960
    const attention = 4 * 8 * 2 * (15 + 6) * 2; // causal pairs 5·6/2 + 3·4/2 = 21: 2,688
    const head = 2 * 6 * 64 * 16; // 12,288
    expect(linears + loraBranch + attention + head).toBe(100_736);
    expect(evalBatchFlops(tiny, lora, microBatchShapeOf([example(5), example(3)], 'lora'))).toBe(100_736);
  });

  it('is what checkpointing runs again in a training step, plus the lm_head with the loss (which it does not)', () => {
    const lora = settings('lora', { lora: { rank: 4, targets: ['q_proj', 'v_proj'], layers: null } });
    const batch = microBatchShapeOf([example(5), example(3)], 'lora');
    expect(microBatchFlops(tiny, { ...lora, gradientCheckpointing: true }, batch).recompute + 12_288).toBe(100_736);
    // an evaluation recomputes nothing: checkpointing changes no evaluation FLOP
    expect(evalBatchFlops(tiny, { ...lora, gradientCheckpointing: true }, batch)).toBe(100_736);
  });
});

const ALL: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** engine.evaluate on one built batch, product by product (2·M·N·K each), pairs and counted labels read off its arrays. */
function enumerateEvaluate(s: ModelSpec, set: FlopSettings, b: Batch): number {
  const nvt = set.method === 'prompt' || set.method === 'prefix' ? set.virtualTokens : 0;
  const M = b.batchSize * (b.seqLen + (set.method === 'prompt' ? nvt : 0));
  const gemm = (m: number, n: number, k: number) => 2 * m * n * k;
  const q = s.numHeads * s.headDim, kv = s.numKvHeads * s.headDim;
  const proj: [LoraTarget, number, number][] = [['q_proj', s.hiddenSize, q], ['k_proj', s.hiddenSize, kv], ['v_proj', s.hiddenSize, kv],
    ['o_proj', q, s.hiddenSize], ['gate_proj', s.hiddenSize, s.intermediateSize], ['up_proj', s.hiddenSize, s.intermediateSize], ['down_proj', s.intermediateSize, s.hiddenSize]];
  let f = 0;
  for (let layer = 0; layer < s.numLayers; layer++) {
    for (const [name, fin, fout] of proj) {
      f += gemm(M, fout, fin);
      const adapted = (set.method === 'lora' || set.method === 'qlora') && set.lora!.targets.includes(name) && (set.lora!.layers ?? [layer]).includes(layer);
      if (adapted) f += gemm(M, set.lora!.rank, fin) + gemm(M, fout, set.lora!.rank); // H = X·Aᵀ, Y += s·H·Bᵀ (DoRA: then a column scale)
    }
  }
  // attention: every (query, key) pair a real query sees, QKᵀ and P·V, hd multiply-adds per pair and query head
  let pairs = 0;
  for (let r = 0; r < b.batchSize; r++) {
    const seg = Array.from(b.segments.slice(r * b.seqLen, (r + 1) * b.seqLen));
    for (let t = 0; t < b.seqLen; t++) {
      if (seg[t] < 0) continue;
      for (let k = 0; k <= t; k++) if (seg[k] === seg[t]) pairs++;
      pairs += nvt; // prompt: the virtual tokens before every row; prefix: its keys
    }
    if (set.method === 'prompt') pairs += (nvt * (nvt + 1)) / 2;
  }
  f += 2 * gemm(1, s.headDim, 1) * s.numHeads * s.numLayers * pairs;
  // lm_head on the counted labels (shifted; under prompt tuning position 0 counts too)
  let C = 0;
  for (let i = 0; i < b.labels.length; i++) if (b.labels[i] !== -100 && (i % b.seqLen > 0 || set.method === 'prompt')) C++;
  f += gemm(C, s.vocabSize, s.hiddenSize);
  if (set.method === 'prefix' && set.prefixEncoderHidden !== null) {
    const enc = set.prefixEncoderHidden;
    f += gemm(nvt, enc, kv) + gemm(nvt, 2 * s.numLayers * kv, enc); // the table projected once per batch
  }
  return f;
}

describe('evalBatchFlops against the enumeration of engine.evaluate on the built batches', () => {
  const spec: ModelSpec = { ...tiny, vocabSize: 97, hiddenSize: 24, intermediateSize: 40, numLayers: 3, numHeads: 4, numKvHeads: 2, tieWordEmbeddings: false };
  const rows = [example(7, 2), example(5), example(9, 3, [0, 0, 0, 0, 1, 1, 1, 1, 1]), example(4, 1), example(6)];
  const cases: [string, FlopSettings][] = [
    ['lora all', settings('lora', { lora: { rank: 4, targets: ALL, layers: null } })],
    ['qlora q,v layers 1,2', settings('qlora', { lora: { rank: 3, targets: ['q_proj', 'v_proj'], layers: [1, 2] } })],
    ['dora with dropout (evaluation drops nothing)', settings('lora', { lora: { rank: 3, targets: ['q_proj', 'up_proj'], layers: [0, 2], dora: true, dropout: 0.1 } })],
    ['full', settings('full')],
    ['full with checkpointing', settings('full', { gradientCheckpointing: true })],
    ['prompt', settings('prompt', { virtualTokens: 5 })],
    ['prefix', settings('prefix', { virtualTokens: 6 })],
    ['prefix projection', settings('prefix', { virtualTokens: 6, prefixEncoderHidden: 10 })],
  ];
  for (const [name, set] of cases) {
    it(name, () => {
      for (const batchSize of [1, 2, 3]) {
        const batches = sequentialBatches(rows, batchSize);
        const want = batches.reduce((n, b) => n + enumerateEvaluate(spec, set, b), 0);
        // one evaluation at the end (no --eval-every): evalWork is that evaluation's batches
        const got = evalWork(spec, set, rows, { totalSteps: 4, evalEvery: 0, batchSize });
        expect(got.flops, `batch size ${batchSize}`).toBe(want);
        expect(got).toMatchObject({ evaluations: 1, rows: 5, tokens: 7 + 5 + 9 + 4 + 6 });
        // and five evaluations (every 2 of 10 steps, the last one included) are five times the work
        expect(evalWork(spec, set, rows, { totalSteps: 10, evalEvery: 2, batchSize })).toMatchObject({ evaluations: 5, flops: 5 * want, tokens: 5 * 31 });
      }
    });
  }

  it('padding counts: a long row batched with short ones costs more than the rows one at a time', () => {
    const lora = cases[0][1];
    const pair = [example(12), example(3)];
    expect(evalWork(spec, lora, pair, { totalSteps: 1, evalEvery: 0, batchSize: 2 }).flops)
      .toBeGreaterThan(evalWork(spec, lora, pair, { totalSteps: 1, evalEvery: 0, batchSize: 1 }).flops);
  });

  it('rows are counted as the data has them: a packed row holds several documents', () => {
    const packed = { ...example(9), documents: ['eval.jsonl:1', 'eval.jsonl:2', 'eval.jsonl:3'] };
    expect(evalWork(spec, cases[0][1], [packed, example(4)], { totalSteps: 1, evalEvery: 0, batchSize: 2 }).rows).toBe(4);
  });

  it('no eval rows: no evaluations, no work', () => {
    expect(evalWork(spec, cases[0][1], [], { totalSteps: 10, evalEvery: 2, batchSize: 2 })).toEqual({ evaluations: 0, rows: 0, tokens: 0, flops: 0 });
  });
});
