// The run-level work and the estimate's arithmetic: runWork against the
// batches enumerated here (the trainer's shuffle, each micro-batch padded to
// its longest row), seconds = FLOPs / (GFLOP/s x efficiency), and a GPU run
// says no number.
import { describe, expect, it } from 'vitest';
import { rowOf, TINY_FLOP_SPEC } from '../testing/flop-fixtures.js';
import { epochOrder } from './batches.js';
import { microBatchFlops, uniformMicroBatch, type FlopSettings } from './step-flops.js';
import {
  CHECKPOINTING_FACTOR, describeRunTime, estimateSeconds, flopSettingsOf, METHOD_EFFICIENCY, methodEfficiency, roughDuration, runWork, tokensPerSecond,
} from './time-estimate.js';

const spec = TINY_FLOP_SPEC;
const lora: FlopSettings = { method: 'lora', lora: { rank: 4, targets: ['q_proj', 'v_proj'], layers: null }, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false };
const ex = rowOf;

describe('runWork', () => {
  const train = [3, 9, 4, 7, 12, 5, 6].map(ex);

  it('sums the micro-batches the trainer forms, each padded to its longest row, over epochs', () => {
    const steps = 5, batch = 2, accum = 2, seed = 7;
    const w = runWork(spec, lora, train, { totalSteps: steps, batchSize: batch, gradAccum: accum, seed });
    // enumerate independently: per epoch the seeded order in micro-batches of 2, steps of 2 micro-batches
    let useful = 0, tokens = 0, micro = 0;
    const perEpochMicro = Math.ceil(train.length / batch), perEpochSteps = Math.ceil(perEpochMicro / accum);
    for (let epoch = 0; epoch * perEpochSteps < steps; epoch++) {
      const order = epochOrder(train.length, seed, epoch);
      for (let s = 0; s < perEpochSteps && epoch * perEpochSteps + s < steps; s++) {
        for (let m = s * accum; m < Math.min((s + 1) * accum, perEpochMicro); m++) {
          const lens = order.slice(m * batch, (m + 1) * batch).map((i) => train[i].inputIds.length);
          const T = Math.max(...lens);
          // the padded batch's flops = rows of T with the real rows' documents and labels
          useful += microBatchFlops(spec, lora, { seqLen: T, rows: lens.map((n) => ({ segments: [n], lossTokens: n - 1 })) }).useful;
          tokens += lens.reduce((a, b) => a + b, 0);
          micro++;
        }
      }
    }
    expect(micro).toBe(8 + 2); // 4 micro-batches per epoch (2 steps), 5 steps
    expect(w.steps).toBe(steps);
    expect(w.tokens).toBe(tokens);
    expect(w.flops.useful).toBe(useful);
  });

  it('padding counts: one long row makes its batch cost more than the rows alone', () => {
    const alone = runWork(spec, lora, [ex(12)], { totalSteps: 1, batchSize: 1, gradAccum: 1, seed: 1 }).flops.useful
      + runWork(spec, lora, [ex(3)], { totalSteps: 1, batchSize: 1, gradAccum: 1, seed: 1 }).flops.useful;
    const together = runWork(spec, lora, [ex(12), ex(3)], { totalSteps: 1, batchSize: 2, gradAccum: 1, seed: 1 }).flops.useful;
    expect(together).toBeGreaterThan(alone);
  });
});

describe('the estimate', () => {
  it('is FLOPs / (GFLOP/s x the method efficiency)', () => {
    const t = estimateSeconds(3e12, lora, { where: 'cpu', gflops: 150 });
    expect(t.seconds).toBeCloseTo(3e12 / (150e9 * METHOD_EFFICIENCY.lora), 9);
    expect(t.efficiency).toBe(METHOD_EFFICIENCY.lora);
    expect(methodEfficiency({ method: 'prefix', prefixEncoderHidden: 8, gradientCheckpointing: false })).toBe(METHOD_EFFICIENCY.prefix_projection);
    expect(methodEfficiency({ ...lora, gradientCheckpointing: true })).toBeCloseTo(METHOD_EFFICIENCY.lora * CHECKPOINTING_FACTOR, 12);
  });

  it('the checkpointing factor turns bench_train\'s useful-FLOP ratio 0.48 into one on counted work', () => {
    // SmolLM2-135M, LoRA r=16 all linears, 1 x 256: recompute = the layers' forward
    const shapes = [[576, 576], [576, 192], [576, 192], [576, 576], [576, 1536], [576, 1536], [1536, 576]];
    const R = 256, L = 30;
    const fwd = shapes.reduce((n, [i, o]) => n + 2 * R * i * o + 2 * R * 16 * (i + o), 0) * L + 4 * 64 * 9 * (256 * 257 / 2) * L;
    const ckpt = microBatchFlops({ ...spec, vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3, headDim: 64 },
      { ...lora, lora: { rank: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: null }, gradientCheckpointing: true },
      uniformMicroBatch(1, 256, 'lora'));
    expect(ckpt.recompute).toBe(fwd);
    expect(CHECKPOINTING_FACTOR).toBeCloseTo((0.48 * (ckpt.useful + fwd) / ckpt.useful) / 0.64, 12);
  });

  it('says no number on a GPU', () => {
    const t = estimateSeconds(1e12, lora, { where: 'gpu' });
    expect(t.seconds).toBeNull();
    const line = describeRunTime({ steps: 12, tokens: 2_300_000, flops: { useful: 1, recompute: 0, total: 1 } }, t, lora);
    expect(line).toBe('this run: 12 steps, 2.3M tokens; time estimated once the first steps run (no GPU speed has been measured to estimate from)');
    expect(line).not.toMatch(/\d+ ?min|about/);
    expect(tokensPerSecond(spec, lora, 1, 16, { where: 'gpu' })).toBeNull();
  });

  it('says the CPU line with the measured speed and the efficiency', () => {
    const t = { seconds: 41 * 60 + 10, gflops: 190.2, efficiency: 0.675 };
    expect(describeRunTime({ steps: 1234, tokens: 2_340_000, flops: { useful: 1, recompute: 0, total: 1 } }, t, lora))
      .toBe('this run: 1,234 steps, 2.3M tokens; about 41 min on this CPU (measured 190 GFLOP/s x 0.68 for LoRA; an estimate, ±30%)');
    expect(roughDuration(30)).toBe('under a minute');
    expect(roughDuration(2 * 3600 + 5 * 60)).toBe('about 2 h 05 min');
  });

  it('tokens/s of full rows is batch x seq over the estimated step time', () => {
    const speed = { where: 'cpu' as const, gflops: 100 };
    const f = microBatchFlops(spec, lora, uniformMicroBatch(2, 16, 'lora')).total;
    expect(tokensPerSecond(spec, lora, 2, 16, speed)).toBeCloseTo(32 / (f / (100e9 * METHOD_EFFICIENCY.lora)), 6);
  });

  it('reads a run\'s settings: the prefix projection\'s default size is token_dim', () => {
    const base = { lora: null, prompt: null, gradientCheckpointing: false };
    expect(flopSettingsOf({ ...base, method: 'prefix', prefix: { numVirtualTokens: 5, projection: true, encoderHiddenSize: null } }, spec))
      .toMatchObject({ virtualTokens: 5, prefixEncoderHidden: 8 });
    expect(flopSettingsOf({ ...base, method: 'prefix', prefix: { numVirtualTokens: 5, projection: false, encoderHiddenSize: null } }, spec).prefixEncoderHidden).toBeNull();
  });
});
