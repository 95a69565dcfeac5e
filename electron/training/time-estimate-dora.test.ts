// DoRA in the time estimate: a run's work adds the norm refresh once per
// optimizer step (not per micro-batch), inspect's tokens/s counts one, the
// run's settings carry dora and dropout into the count, and the line says DoRA.
import { describe, expect, it } from 'vitest';
import { rowOf, TINY_FLOP_SPEC } from '../testing/flop-fixtures.js';
import { microBatchFlops, uniformMicroBatch, type FlopSettings } from './step-flops.js';
import { describeRunTime, flopSettingsOf, METHOD_EFFICIENCY, runWork, tokensPerSecond } from './time-estimate.js';

const spec = TINY_FLOP_SPEC;
const dora: FlopSettings = { method: 'lora', lora: { rank: 4, targets: ['q_proj', 'v_proj'], layers: null, dora: true, dropout: 0 }, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false };
const ex = rowOf;

/** The norm refresh of q_proj [16 -> 16] and v_proj [16 -> 8] at rank 4 in both layers, written out: A·Wᵀ, A·Aᵀ, B·(A·Aᵀ). */
const NORMS = 2 * ((2 * 4 * 16 * 16 + 2 * 4 * 4 * 16 + 2 * 16 * 4 * 4) + (2 * 4 * 8 * 16 + 2 * 4 * 4 * 16 + 2 * 8 * 4 * 4));

describe('DoRA in the time estimate', () => {
  it('runWork adds the norms once per optimizer step, whatever the micro-batches per step', () => {
    // one row of 5 tokens: 1 micro-batch per epoch, so 1 per step even with --grad-accum 2
    const one = runWork(spec, dora, [ex(5)], { totalSteps: 3, batchSize: 1, gradAccum: 2, seed: 1 });
    const micro = microBatchFlops(spec, dora, { seqLen: 5, rows: [{ segments: [5], lossTokens: 4 }] }).useful;
    expect(one.flops.useful).toBe(3 * (micro + NORMS));
    // two rows of 5, batch 1, grad-accum 2: 2 micro-batches but still one refresh per step
    const two = runWork(spec, dora, [ex(5), ex(5)], { totalSteps: 3, batchSize: 1, gradAccum: 2, seed: 1 });
    expect(two.flops.useful).toBe(3 * (2 * micro + NORMS));
    expect(two.flops.total).toBe(two.flops.useful);
  });

  it('tokens/s counts one refresh per step of batch x seq rows', () => {
    const speed = { where: 'cpu' as const, gflops: 100 };
    const f = microBatchFlops(spec, dora, uniformMicroBatch(2, 16, 'lora')).total + NORMS;
    expect(tokensPerSecond(spec, dora, 2, 16, speed)).toBeCloseTo(32 / (f / (100e9 * METHOD_EFFICIENCY.lora)), 6);
    const plain = tokensPerSecond(spec, { ...dora, lora: { ...dora.lora!, dora: false } }, 2, 16, speed)!;
    expect(tokensPerSecond(spec, dora, 2, 16, speed)!).toBeLessThan(plain);
  });

  it('reads dora and the dropout from a run\'s LoRA settings', () => {
    const config = {
      method: 'qlora' as const, prompt: null, prefix: null, gradientCheckpointing: false,
      lora: { rank: 4, alpha: 8, dropout: 0.1, targets: ['q_proj' as const], rslora: false, dora: true, init: 'default' as const, layers: null },
    };
    const s = flopSettingsOf(config, spec);
    expect(s.lora).toMatchObject({ dora: true, dropout: 0.1 });
    // with dropout the forward has W·xd too: more work than the same DoRA without dropout
    const batch = uniformMicroBatch(1, 8, 'qlora');
    expect(microBatchFlops(spec, s, batch).useful).toBeGreaterThan(microBatchFlops(spec, { ...s, lora: { ...s.lora!, dropout: 0 } }, batch).useful);
  });

  it('the line says DoRA', () => {
    const t = { seconds: 600, gflops: 100, efficiency: 0.675 };
    expect(describeRunTime({ steps: 10, tokens: 5000, flops: { useful: 1, recompute: 0, total: 1 } }, t, dora))
      .toBe('this run: 10 steps, 5.0k tokens; about 10 min on this CPU (measured 100 GFLOP/s x 0.68 for LoRA (DoRA); an estimate, ±30%)');
    expect(describeRunTime({ steps: 10, tokens: 5000, flops: { useful: 1, recompute: 0, total: 1 } }, t, { ...dora, method: 'qlora', gradientCheckpointing: true }))
      .toContain('for QLoRA (DoRA) with gradient checkpointing;');
  });
});
