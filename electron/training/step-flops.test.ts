// The FLOP counts against an independent enumeration: every product the
// engine runs for one micro-batch listed as a GEMM (2·M·N·K each), the
// attention's query-key pairs counted by walking the positions of each row
// with its segment ids. Tiny specs, every method.
import { describe, expect, it } from 'vitest';
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { attentionPairs, microBatchFlops, microBatchShapeOf, rowShapeOf, stepOverheadFlops, uniformMicroBatch, type FlopSettings } from './step-flops.js';
import type { TrainMethod } from './config.js';

const spec: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 97, hiddenSize: 24, intermediateSize: 40, numLayers: 3, numHeads: 4, numKvHeads: 2,
  headDim: 8, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 0 },
  maxPositionEmbeddings: 128, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
};
const ALL: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** [name, in, out] of each projection, written out for the spec above */
function projections(s: ModelSpec): [LoraTarget, number, number][] {
  const q = s.numHeads * s.headDim, kv = s.numKvHeads * s.headDim;
  return [['q_proj', s.hiddenSize, q], ['k_proj', s.hiddenSize, kv], ['v_proj', s.hiddenSize, kv], ['o_proj', q, s.hiddenSize],
    ['gate_proj', s.hiddenSize, s.intermediateSize], ['up_proj', s.hiddenSize, s.intermediateSize], ['down_proj', s.intermediateSize, s.hiddenSize]];
}

interface Row { tokens: number; segments?: number[]; labels: number[] }

/** Visible (query, key) pairs of a row by brute force: same segment, key <= query; padding (-1) queries none. */
function bruteForcePairs(segs: number[], virtualBefore: number, prefixKeys: number): number {
  // prompt tuning: virtual positions first, segment -2, visible to every later position
  const all = [...Array(virtualBefore).fill(-2), ...segs];
  let n = 0;
  for (let q = 0; q < all.length; q++) {
    if (all[q] === -1) continue;
    n += prefixKeys * (all[q] === -2 ? 0 : 1);
    for (let k = 0; k <= q; k++) if (all[k] === all[q] || all[k] === -2) n++;
  }
  return n;
}

function enumerate(s: ModelSpec, set: FlopSettings, rows: Row[]): { useful: number; recompute: number } {
  const T = Math.max(...rows.map((r) => r.tokens));
  const nvt = set.method === 'prompt' || set.method === 'prefix' ? set.virtualTokens : 0;
  const M = rows.length * (T + (set.method === 'prompt' ? nvt : 0));
  let useful = 0, fwd = 0;
  const gemm = (m: number, n: number, k: number) => 2 * m * n * k;
  for (let layer = 0; layer < s.numLayers; layer++) {
    for (const [name, fin, fout] of projections(s)) {
      const f = gemm(M, fout, fin);
      fwd += f;
      const noDx = layer === 0 && ['q_proj', 'k_proj', 'v_proj'].includes(name) && set.method !== 'full' && set.method !== 'prompt';
      useful += f + (noDx ? 0 : gemm(M, fin, fout)) + (set.method === 'full' ? gemm(fout, fin, M) : 0);
      const adapted = set.lora && set.lora.targets.includes(name) && (set.lora.layers ?? [layer]).includes(layer);
      if (adapted && (set.method === 'lora' || set.method === 'qlora')) {
        const r = set.lora!.rank;
        const h = gemm(M, r, fin), y = gemm(M, fout, r); // H = X Aᵀ, Y += H Bᵀ
        fwd += h + y;
        // dB = dYᵀ H, dH = dY B, dA = dHᵀ X, dX += dH A
        useful += h + y + gemm(fout, r, M) + gemm(M, r, fout) + gemm(r, fin, M) + (layer === 0 && name.match(/^[qkv]_/) ? 0 : gemm(M, fin, r));
        if (set.lora!.dora) {
          // core/methods/dora.cpp, call by call. Backward: T = W·xd (base GEMM) + s·H·Bᵀ again, for dm
          useful += gemm(M, fout, fin) + gemm(M, fout, r);
          if ((set.lora!.dropout ?? 0) > 0) {
            const wxd = gemm(M, fout, fin); // forward: W·xd beside W·x
            fwd += wxd;
            useful += wxd + (noDx ? 0 : gemm(M, fin, fout)); // backward: (f - 1)·g through W to xd
          }
        }
      }
    }
  }
  // attention: scores and P·V forward (2 products), dV, dP, dQ, dK backward (4), hd multiply-adds per pair and head
  let pairs = 0;
  for (const r of rows) {
    const segs = Array.from({ length: T }, (_, t) => (t < r.tokens ? (r.segments ? r.segments[t] : 0) : -1));
    pairs += bruteForcePairs(segs, set.method === 'prompt' ? nvt : 0, set.method === 'prefix' ? nvt : 0);
  }
  const perPair = 2 * s.headDim * s.numHeads * s.numLayers;
  fwd += 2 * perPair * pairs;
  useful += 6 * perPair * pairs;
  // lm_head on the counted positions: logits, dX (and dW for full)
  let C = 0;
  for (const r of rows) r.labels.forEach((l, t) => { if (l !== -100 && (t > 0 || set.method === 'prompt')) C++; });
  useful += gemm(C, s.vocabSize, s.hiddenSize) * (set.method === 'full' ? 3 : 2);
  if (set.method === 'prefix' && set.prefixEncoderHidden !== null) {
    const td = s.numKvHeads * s.headDim, enc = set.prefixEncoderHidden, out = 2 * s.numLayers * td;
    useful += 3 * (gemm(nvt, enc, td) + gemm(nvt, out, enc)); // two layers of the MLP, forward + dX + dW
  }
  return { useful, recompute: set.gradientCheckpointing ? fwd : 0 };
}

const settings = (method: TrainMethod, extra: Partial<FlopSettings> = {}): FlopSettings => ({
  method, lora: null, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false, ...extra,
});

// rows as the loader gives them: Int32Array token arrays
const example = (n: number, masked = 0, segments?: number[]) => ({
  inputIds: Int32Array.from({ length: n }, (_, i) => i + 1),
  labels: Int32Array.from({ length: n }, (_, i) => (i < masked ? -100 : i + 1)),
  segments: segments && Int32Array.from(segments),
});

describe('microBatchFlops', () => {
  const rows = [example(7, 2), example(5), example(9, 3, [0, 0, 0, 0, 1, 1, 1, 1, 1])];
  const asRows: Row[] = rows.map((e) => ({ tokens: e.inputIds.length, labels: Array.from(e.labels), segments: e.segments && Array.from(e.segments) }));
  const cases: [string, FlopSettings][] = [
    ['lora all', settings('lora', { lora: { rank: 4, targets: ALL, layers: null } })],
    ['qlora q,v layers 1,2', settings('qlora', { lora: { rank: 3, targets: ['q_proj', 'v_proj'], layers: [1, 2] } })],
    ['lora q,down layer 0', settings('lora', { lora: { rank: 2, targets: ['q_proj', 'down_proj'], layers: [0] } })],
    ['dora all, no dropout', settings('lora', { lora: { rank: 4, targets: ALL, layers: null, dora: true, dropout: 0 } })],
    ['dora q,v,up layers 0,2 with dropout', settings('lora', { lora: { rank: 3, targets: ['q_proj', 'v_proj', 'up_proj'], layers: [0, 2], dora: true, dropout: 0.1 } })],
    ['qlora dora k,o layer 1 with dropout', settings('qlora', { lora: { rank: 2, targets: ['k_proj', 'o_proj'], layers: [1], dora: true, dropout: 0.05 } })],
    ['lora with dropout, no dora (dropout alone adds nothing)', settings('lora', { lora: { rank: 4, targets: ALL, layers: null, dora: false, dropout: 0.1 } })],
    ['full', settings('full')],
    ['prompt', settings('prompt', { virtualTokens: 5 })],
    ['prefix', settings('prefix', { virtualTokens: 6 })],
    ['prefix projection', settings('prefix', { virtualTokens: 6, prefixEncoderHidden: 10 })],
  ];
  for (const [name, set] of cases) {
    it(`matches the enumeration: ${name}`, () => {
      const got = microBatchFlops(spec, set, microBatchShapeOf(rows, set.method));
      const want = enumerate(spec, set, asRows);
      expect(got.useful).toBe(want.useful);
      expect(got.recompute).toBe(0);
      expect(got.total).toBe(want.useful);
    });
    it(`checkpointing adds exactly one forward of the layers: ${name}`, () => {
      const ck = { ...set, gradientCheckpointing: true };
      const got = microBatchFlops(spec, ck, microBatchShapeOf(rows, set.method));
      const want = enumerate(spec, ck, asRows);
      expect(got.useful).toBe(microBatchFlops(spec, set, microBatchShapeOf(rows, set.method)).useful);
      expect(got.recompute).toBe(want.recompute);
      expect(got.total).toBe(want.useful + want.recompute);
    });
  }

  it('the LoRA rank term is linear in the rank: 6·R·r·Σ(in+out)·L less layer 0 q/k/v dX', () => {
    const at = (r: number) => microBatchFlops(spec, settings('lora', { lora: { rank: r, targets: ALL, layers: null } }), uniformMicroBatch(2, 10, 'lora')).useful;
    const R = 20, sumInOut = projections(spec).reduce((n, [, i, o]) => n + i + o, 0);
    const perRank = 6 * R * sumInOut * spec.numLayers - 2 * R * 3 * spec.hiddenSize;
    expect(at(8) - at(0)).toBe(8 * perRank);
    expect(at(16) - at(8)).toBe(8 * perRank);
  });

  it('padding costs linear work but no attention pairs and no lm_head rows', () => {
    const set = settings('lora', { lora: { rank: 4, targets: ALL, layers: null } });
    const short = microBatchShapeOf([example(4)], 'lora');
    const padded = { seqLen: 10, rows: short.rows };
    const extra = microBatchFlops(spec, set, padded).useful - microBatchFlops(spec, set, short).useful;
    // only the 6 padding positions' projections (forward + dX, less layer 0 q/k/v dX) and their LoRA
    const perRow = enumerate(spec, set, [{ tokens: 10, labels: Array(10).fill(-100) }]).useful
      - enumerate(spec, set, [{ tokens: 4, labels: Array(4).fill(-100) }]).useful;
    const pairsFull = 6 * 2 * spec.headDim * spec.numHeads * spec.numLayers * (55 - 10);
    expect(extra).toBe(perRow - pairsFull);
    expect(extra).toBeGreaterThan(0);
  });
});

describe('stepOverheadFlops', () => {
  it('DoRA: the norms once per step, A·Wᵀ + A·Aᵀ + B·(A·Aᵀ) per adapted linear; nothing for plain LoRA or other methods', () => {
    const set = settings('qlora', { lora: { rank: 3, targets: ['v_proj', 'down_proj'], layers: [2, 0, 2], dora: true } });
    const gemm = (m: number, n: number, k: number) => 2 * m * n * k;
    let perLayer = 0;
    for (const [name, fin, fout] of projections(spec)) {
      if (name === 'v_proj' || name === 'down_proj') perLayer += gemm(3, fout, fin) + gemm(3, 3, fin) + gemm(fout, 3, 3);
    }
    const want = 2 * perLayer; // layers 0 and 2 (the repeated 2 counts once)
    expect(stepOverheadFlops(spec, set)).toEqual({ useful: want, recompute: 0, total: want });
    // all layers: three of them
    const all = stepOverheadFlops(spec, settings('lora', { lora: { rank: 3, targets: ['v_proj', 'down_proj'], layers: null, dora: true } }));
    expect(all.useful).toBe(3 * perLayer);
    expect(stepOverheadFlops(spec, settings('lora', { lora: { rank: 3, targets: ALL, layers: null, dora: false } }))).toEqual({ useful: 0, recompute: 0, total: 0 });
    expect(stepOverheadFlops(spec, settings('full'))).toEqual({ useful: 0, recompute: 0, total: 0 });
  });

  it('DoRA without dropout costs one base GEMM and one s·H·Bᵀ per adapted linear more than LoRA, in backward only', () => {
    const lora = { rank: 4, targets: ALL, layers: null, dropout: 0 };
    const batch = uniformMicroBatch(2, 10, 'lora');
    const plain = microBatchFlops(spec, settings('lora', { lora, gradientCheckpointing: true }), batch);
    const dora = microBatchFlops(spec, settings('lora', { lora: { ...lora, dora: true }, gradientCheckpointing: true }), batch);
    const R = 20;
    const extra = projections(spec).reduce((n, [, fin, fout]) => n + 2 * R * fin * fout + 2 * R * 4 * fout, 0) * spec.numLayers;
    expect(dora.useful - plain.useful).toBe(extra);
    expect(dora.recompute).toBe(plain.recompute); // the forward is LoRA's
  });
});

describe('rowShapeOf / attentionPairs', () => {
  it('splits packed rows into their documents and counts shifted labels', () => {
    const r = rowShapeOf(example(9, 3, [0, 0, 0, 0, 1, 1, 1, 1, 1]), 'lora');
    expect(r.segments).toEqual([4, 5]);
    expect(r.lossTokens).toBe(6);
    // prompt tuning: the last virtual token predicts position 0
    expect(rowShapeOf(example(4), 'prompt').lossTokens).toBe(4);
    expect(rowShapeOf(example(4), 'lora').lossTokens).toBe(3);
  });
  it('counts the causal pairs of each document, the virtual tokens and the prefix keys', () => {
    const row = { segments: [4, 5], lossTokens: 0 };
    expect(attentionPairs(row, 'lora', 0)).toBe(bruteForcePairs([0, 0, 0, 0, 1, 1, 1, 1, 1], 0, 0));
    expect(attentionPairs(row, 'prompt', 3)).toBe(bruteForcePairs([0, 0, 0, 0, 1, 1, 1, 1, 1], 3, 0));
    expect(attentionPairs(row, 'prefix', 3)).toBe(bruteForcePairs([0, 0, 0, 0, 1, 1, 1, 1, 1], 0, 3));
    expect(attentionPairs({ segments: [4], lossTokens: 0 }, 'lora', 0)).toBe(10);
  });
});
