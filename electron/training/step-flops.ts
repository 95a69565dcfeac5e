// The floating-point work of one training step, counted by the rules
// native-addon/bench/bench_train.cpp documents (its step_flops), so a time
// estimated from these counts and the efficiencies bench:cpu measured with
// the same counting (time-estimate.ts) means the same thing. With R the rows
// the engine computes (every position of the padded batch) and C the
// positions whose label counts:
//   linears    forward 2·R·Σ(in·out) over the 7 projections of every layer,
//              input-grad the same minus layer 0's q/k/v (frozen embeddings
//              need no gradient; prompt and full fine-tuning do need it),
//              weight-grad the same again for full fine-tuning only
//   lm_head    2·C·V·D forward + 2·C·V·D input-grad (+ 2·C·V·D weight-grad, full):
//              only counted rows go through it (core/model/loss_head.cpp)
//   LoRA       per adapted linear 2·R·r·(in+out) forward + 4·R·r·(in+out)
//              backward (layer 0's q/k/v have no dX: 2·R·r·in less)
//   DoRA       on top of LoRA, per adapted linear (core/methods/dora.cpp):
//              backward recomputes the frozen product for the magnitude's
//              gradient, 2·R·in·out, plus s·H·Bᵀ, 2·R·r·out; with dropout
//              the forward adds W·xd, 2·R·in·out, and backward the input
//              gradient of the (m/n - 1)·W·xd term, 2·R·in·out (none for
//              layer 0's q/k/v, which have no dX). Once per optimizer step
//              (not per micro-batch: the norms are refreshed after each
//              update) the norms ||W + s·B·A||_row: A·Wᵀ 2·r·in·out, A·Aᵀ
//              2·r²·in, B·(A·Aᵀ) 2·out·r² (stepOverheadFlops)
//   attention  4·hd·Hq per query-key pair forward, 8·hd·Hq backward; the
//              pairs are the causal ones inside each segment (padding
//              queries and earlier packed documents are skipped by the
//              kernels), plus every real query × the prefix's virtual keys
//   prompt     the virtual tokens are rows too (seqLen + nvt per row) that
//              every real token attends to
//   prefix     projection MLP 6·nvt·(token_dim·enc + enc·L·2·token_dim)
// Gradient checkpointing recomputes each layer's forward during backward:
// that is counted separately (`recompute`) — real time, not useful work.
//
// An evaluation batch (engine.evaluate, core/model/llama.cpp evaluate) runs
// the forward alone, by the same rules: the linears' forward, LoRA's forward
// (DoRA without dropout: evaluation never drops, and the norms it may
// refresh are the optimizer step's, counted there), attention's 4·hd·Hq per
// pair, the lm_head's 2·C·V·D with the loss, prefix tuning's projection MLP
// forward 2·nvt·(token_dim·enc + enc·L·2·token_dim) (evaluate projects the
// table for every batch). No backward, no optimizer, no recompute.
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { IGNORE_INDEX, type Example } from './data.js';
import type { TrainMethod } from './config.js';

/** The seven projections in the order bench_train.cpp and peft-config.ts LORA_TARGETS list them. */
const PROJECTIONS: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** What of a run's settings decides its FLOPs. */
export interface FlopSettings {
  method: TrainMethod;
  /** lora / qlora: rank, targets and layers (null: all); DoRA and the dropout (absent: plain LoRA, no dropout) */
  lora: { rank: number; targets: readonly LoraTarget[]; layers: readonly number[] | null; dora?: boolean; dropout?: number } | null;
  /** prompt / prefix: virtual tokens (0 otherwise) */
  virtualTokens: number;
  /** prefix tuning through its MLP: the encoder hidden size (null: no projection) */
  prefixEncoderHidden: number | null;
  gradientCheckpointing: boolean;
}

/** One row of a micro-batch: its documents' token counts (one unless packed) and its counted labels. */
export interface RowShape {
  segments: readonly number[];
  lossTokens: number;
}

/** One micro-batch: rows padded to seqLen (the longest row). */
export interface MicroBatchShape {
  seqLen: number;
  rows: readonly RowShape[];
}

export interface StepFlops {
  /** the useful work bench_train.cpp counts */
  useful: number;
  /** the forward that gradient checkpointing does again (0 without it) */
  recompute: number;
  /** useful + recompute: what the time is spent on */
  total: number;
}

/** in and out features of each projection, in PROJECTIONS order */
export function projectionShapes(spec: ModelSpec): { in: number; out: number }[] {
  const D = spec.hiddenSize, F = spec.intermediateSize;
  const Dq = spec.numHeads * spec.headDim, Dkv = spec.numKvHeads * spec.headDim;
  return [
    { in: D, out: Dq }, { in: D, out: Dkv }, { in: D, out: Dkv }, { in: Dq, out: D },
    { in: D, out: F }, { in: D, out: F }, { in: F, out: D },
  ];
}

/** Whether the engine needs layer 0's q/k/v input gradient: only when something below it learns. */
function needsLayer0InputGrad(method: TrainMethod): boolean {
  return method === 'full' || method === 'prompt';
}

/** Query-key pairs the attention kernels compute for one row (see the header). */
export function attentionPairs(row: RowShape, method: TrainMethod, virtualTokens: number): number {
  let pairs = 0, real = 0;
  for (const n of row.segments) {
    pairs += (n * (n + 1)) / 2;
    real += n;
  }
  if (method === 'prompt') pairs += (virtualTokens * (virtualTokens + 1)) / 2 + virtualTokens * real;
  if (method === 'prefix') pairs += virtualTokens * real;
  return pairs;
}

/** The FLOPs of forward_backward on one micro-batch (the optimizer update is not counted). */
export function microBatchFlops(spec: ModelSpec, s: FlopSettings, batch: MicroBatchShape): StepFlops {
  const prompt = s.method === 'prompt', prefix = s.method === 'prefix', full = s.method === 'full';
  const nvt = prompt || prefix ? s.virtualTokens : 0;
  const L = spec.numLayers, D = spec.hiddenSize, V = spec.vocabSize;
  const R = batch.rows.length * (batch.seqLen + (prompt ? nvt : 0));
  const C = batch.rows.reduce((n, r) => n + r.lossTokens, 0);
  const shapes = projectionShapes(spec);
  const layerParams = shapes.reduce((n, p) => n + p.in * p.out, 0);
  const qkvParams = shapes.slice(0, 3).reduce((n, p) => n + p.in * p.out, 0);

  const linearForward = 2 * R * layerParams * L;
  let backward = 2 * R * layerParams * L;
  if (!needsLayer0InputGrad(s.method)) backward -= 2 * R * qkvParams;
  if (full) backward += 2 * R * layerParams * L;
  const headForward = 2 * C * V * D;
  backward += (full ? 4 : 2) * C * V * D;

  let loraForward = 0;
  if ((s.method === 'lora' || s.method === 'qlora') && s.lora) {
    const r = s.lora.rank;
    const layers = s.lora.layers ?? Array.from({ length: L }, (_, i) => i);
    const dora = s.lora.dora === true, dropout = (s.lora.dropout ?? 0) > 0;
    PROJECTIONS.forEach((name, m) => {
      if (!s.lora!.targets.includes(name)) return;
      const { in: fin, out: fout } = shapes[m];
      const noInputGrad = m <= 2 && layers.includes(0); // no dX below layer 0
      loraForward += 2 * R * r * (fin + fout) * layers.length;
      backward += 4 * R * r * (fin + fout) * layers.length;
      if (noInputGrad) backward -= 2 * R * r * fin;
      if (!dora) return;
      // the magnitude's gradient needs W·xd + s·H·Bᵀ again (not kept from forward)
      backward += (2 * R * fin * fout + 2 * R * r * fout) * layers.length;
      if (dropout) {
        loraForward += 2 * R * fin * fout * layers.length; // W·xd beside W·x
        backward += 2 * R * fin * fout * (layers.length - (noInputGrad ? 1 : 0)); // (m/n - 1)·g back through W to xd
      }
    });
  }

  const pairs = batch.rows.reduce((n, row) => n + attentionPairs(row, s.method, nvt), 0);
  const hdHq = spec.headDim * spec.numHeads;
  const attentionForward = 4 * hdHq * pairs * L;
  backward += 8 * hdHq * pairs * L;

  let projection = 0;
  if (prefix && s.prefixEncoderHidden !== null) {
    const tokenDim = spec.numKvHeads * spec.headDim, enc = s.prefixEncoderHidden;
    projection = 6 * nvt * (tokenDim * enc + enc * L * 2 * tokenDim);
  }

  const useful = linearForward + headForward + loraForward + attentionForward + backward + projection;
  // checkpointing keeps each layer's input and runs its forward again in backward (not the lm_head, which is chunked anyway)
  const recompute = s.gradientCheckpointing ? linearForward + loraForward + attentionForward : 0;
  return { useful, recompute, total: useful + recompute };
}

/** The FLOPs of engine.evaluate on one batch: the forward alone (see the header). */
export function evalBatchFlops(spec: ModelSpec, s: FlopSettings, batch: MicroBatchShape): number {
  const prompt = s.method === 'prompt', prefix = s.method === 'prefix';
  const nvt = prompt || prefix ? s.virtualTokens : 0;
  const L = spec.numLayers, D = spec.hiddenSize, V = spec.vocabSize;
  const R = batch.rows.length * (batch.seqLen + (prompt ? nvt : 0));
  const C = batch.rows.reduce((n, r) => n + r.lossTokens, 0);
  const shapes = projectionShapes(spec);
  const linears = 2 * R * shapes.reduce((n, p) => n + p.in * p.out, 0) * L;
  let lora = 0;
  if ((s.method === 'lora' || s.method === 'qlora') && s.lora) {
    const layers = (s.lora.layers ?? Array.from({ length: L }, (_, i) => i)).length;
    PROJECTIONS.forEach((name, m) => {
      if (s.lora!.targets.includes(name)) lora += 2 * R * s.lora!.rank * (shapes[m].in + shapes[m].out) * layers;
    });
  }
  const pairs = batch.rows.reduce((n, row) => n + attentionPairs(row, s.method, nvt), 0);
  const attention = 4 * spec.headDim * spec.numHeads * pairs * L;
  const head = 2 * C * V * D;
  let projection = 0;
  if (prefix && s.prefixEncoderHidden !== null) {
    const tokenDim = spec.numKvHeads * spec.headDim, enc = s.prefixEncoderHidden;
    projection = 2 * nvt * (tokenDim * enc + enc * L * 2 * tokenDim);
  }
  return linears + lora + attention + head + projection;
}

/**
 * Work done once per optimizer step rather than per micro-batch: DoRA's
 * weight norms, refreshed after each update (0 for every other method).
 * Not recomputed under gradient checkpointing (the norms are kept).
 */
export function stepOverheadFlops(spec: ModelSpec, s: FlopSettings): StepFlops {
  if (!((s.method === 'lora' || s.method === 'qlora') && s.lora?.dora === true)) return NO_FLOPS;
  const r = s.lora.rank;
  const layers = s.lora.layers === null ? spec.numLayers : new Set(s.lora.layers).size;
  const shapes = projectionShapes(spec);
  let flops = 0;
  PROJECTIONS.forEach((name, m) => {
    if (!s.lora!.targets.includes(name)) return;
    const { in: fin, out: fout } = shapes[m];
    flops += (2 * r * fin * fout + 2 * r * r * fin + 2 * fout * r * r) * layers;
  });
  return { useful: flops, recompute: 0, total: flops };
}

/** Sums step counts. */
export function addFlops(a: StepFlops, b: StepFlops): StepFlops {
  return { useful: a.useful + b.useful, recompute: a.recompute + b.recompute, total: a.total + b.total };
}

export const NO_FLOPS: StepFlops = { useful: 0, recompute: 0, total: 0 };

/**
 * The shape of one example as a row: its packed documents (segment ids, or
 * one document) and the labels the loss counts — shifted (position 0 has no
 * previous token) except under prompt tuning, where the last virtual token
 * predicts the first real one.
 */
export function rowShapeOf(example: Pick<Example, 'inputIds' | 'labels' | 'segments'>, method: TrainMethod): RowShape {
  const n = example.inputIds.length;
  const segments: number[] = [];
  if (example.segments) {
    let current = Number.NaN, len = 0;
    for (const id of example.segments) {
      if (id === current) len++;
      else {
        if (len > 0 && current >= 0) segments.push(len);
        current = id;
        len = 1;
      }
    }
    if (len > 0 && current >= 0) segments.push(len);
  } else if (n > 0) {
    segments.push(n);
  }
  let lossTokens = 0;
  for (let t = method === 'prompt' ? 0 : 1; t < n; t++) if (example.labels[t] !== IGNORE_INDEX) lossTokens++;
  return { segments, lossTokens };
}

/** A micro-batch of examples as the engine gets it (makeBatch: padded to the longest row). */
export function microBatchShapeOf(rows: readonly Pick<Example, 'inputIds' | 'labels' | 'segments'>[], method: TrainMethod): MicroBatchShape {
  return { seqLen: Math.max(0, ...rows.map((r) => r.inputIds.length)), rows: rows.map((r) => rowShapeOf(r, method)) };
}

/** A micro-batch of `batch` full rows of `seqLen` tokens, every label counted (inspect's and the bench's shape). */
export function uniformMicroBatch(batch: number, seqLen: number, method: TrainMethod): MicroBatchShape {
  const row: RowShape = { segments: [seqLen], lossTokens: method === 'prompt' ? seqLen : seqLen - 1 };
  return { seqLen, rows: Array.from({ length: batch }, () => row) };
}
