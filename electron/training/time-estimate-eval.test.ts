// A run's evaluations in its time estimate: the seconds grow by exactly the
// counted evaluation FLOPs over the speed (at the method's efficiency times
// the measured forward-over-training ratio, never checkpointing's factor),
// and the line names the evaluating part only when it is more than 5% of the run.
import { describe, expect, it } from 'vitest';
import { rowOf, TINY_FLOP_SPEC } from '../testing/flop-fixtures.js';
import { evalWork, NO_EVAL_WORK } from './eval-work.js';
import type { FlopSettings } from './step-flops.js';
import {
  CHECKPOINTING_FACTOR, describeRunTime, describeTime, estimateRunSeconds, EVAL_OVER_TRAIN_EFFICIENCY, evalEfficiency, evaluatingSeconds, METHOD_EFFICIENCY, runWork, type RunTime,
} from './time-estimate.js';

const spec = TINY_FLOP_SPEC;
const lora: FlopSettings = { method: 'lora', lora: { rank: 4, targets: ['q_proj', 'v_proj'], layers: null }, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false };
const ex = rowOf;
const speed = { where: 'cpu' as const, gflops: 100 };

describe('the estimate with evaluations', () => {
  const train = [ex(6), ex(4), ex(7)];
  // eval rows of 5 and 3 tokens in one batch of 2: 100,736 FLOPs an evaluation (linears 76,800 + LoRA 8,960 + attention 2,688 + head 12,288)
  const evalRows = [ex(5), ex(3)];
  // 10 steps, --eval-every 3: after steps 3, 6, 9 and the last one, 10
  const EVAL_FLOPS = 4 * 100_736;

  for (const ckpt of [false, true]) {
    it(`is the same run's estimate plus the counted evaluations${ckpt ? ' (checkpointing: not applied to the evaluations)' : ''}`, () => {
      const s = { ...lora, gradientCheckpointing: ckpt };
      const work = runWork(spec, s, train, { totalSteps: 10, batchSize: 2, gradAccum: 1, seed: 3 });
      const evaluation = evalWork(spec, s, evalRows, { totalSteps: 10, evalEvery: 3, batchSize: 2 });
      expect(evaluation).toEqual({ evaluations: 4, rows: 2, tokens: 4 * 8, flops: EVAL_FLOPS });
      const without = estimateRunSeconds(work, NO_EVAL_WORK, s, speed);
      const withEval = estimateRunSeconds(work, evaluation, s, speed);
      expect(without.evaluating).toBeNull();
      expect(without.seconds).toBeCloseTo(work.flops.total / (100e9 * METHOD_EFFICIENCY.lora * (ckpt ? CHECKPOINTING_FACTOR : 1)), 15);
      const evalSeconds = EVAL_FLOPS / (100e9 * METHOD_EFFICIENCY.lora * EVAL_OVER_TRAIN_EFFICIENCY.lora);
      expect(withEval.evaluating).toEqual({ seconds: expect.closeTo(evalSeconds, 15), evaluations: 4, rows: 2 });
      expect(withEval.seconds! - without.seconds!).toBeCloseTo(evalSeconds, 15);
      expect(evaluatingSeconds(withEval)).toBe(withEval.evaluating!.seconds);
      expect(evaluatingSeconds(without)).toBe(0);
      // the training part and what the line says of the speed are the training's
      expect(withEval.efficiency).toBe(without.efficiency);
    });
  }

  it('on a GPU still says no number', () => {
    const work = runWork(spec, lora, train, { totalSteps: 10, batchSize: 2, gradAccum: 1, seed: 3 });
    const t = estimateRunSeconds(work, evalWork(spec, lora, evalRows, { totalSteps: 10, evalEvery: 3, batchSize: 2 }), lora, { where: 'gpu' });
    expect(t).toEqual({ seconds: null, gflops: null, efficiency: null, evaluating: { seconds: null, evaluations: 4, rows: 2 } });
    // run.json's evaluating part: no number either (not 0, which would say "no evaluations")
    expect(evaluatingSeconds(t)).toBeNull();
    expect(evaluatingSeconds(estimateRunSeconds(work, NO_EVAL_WORK, lora, { where: 'gpu' }))).toBeNull();
    expect(describeTime(t, lora)).toBe('time estimated once the first steps run (no GPU speed has been measured to estimate from)');
  });
});

describe('the evaluations\' efficiency', () => {
  it('is each method\'s training efficiency times its forward ratio, the prefix projection\'s included, never checkpointing\'s', () => {
    expect(evalEfficiency({ method: 'full', prefixEncoderHidden: null })).toBeCloseTo(0.53 * 1.36, 12);
    expect(evalEfficiency({ method: 'qlora', prefixEncoderHidden: null })).toBeCloseTo(0.555 * 1.23, 12);
    expect(evalEfficiency({ method: 'prefix', prefixEncoderHidden: 8 })).toBeCloseTo(0.64 * 1.07, 12);
    // a forward is faster per FLOP than a training step for every method
    for (const m of ['lora', 'qlora', 'full', 'prompt', 'prefix'] as const) expect(EVAL_OVER_TRAIN_EFFICIENCY[m]).toBeGreaterThan(1);
  });
});

describe('the line', () => {
  const at = (seconds: number, evaluating: RunTime['evaluating']): RunTime => ({ seconds, gflops: 190.2, efficiency: 0.675, evaluating });
  const work = { steps: 1234, tokens: 2_340_000, flops: { useful: 1, recompute: 0, total: 1 } };

  it('names the evaluating part when it is more than 5% of the run', () => {
    expect(describeRunTime(work, at(41 * 60, { seconds: 6 * 60, evaluations: 12, rows: 500 }), lora))
      .toBe('this run: 1,234 steps, 2.3M tokens; about 41 min on this CPU, of which about 6 min evaluating 500 rows 12 times (measured 190 GFLOP/s x 0.68 for LoRA; an estimate, ±30%)');
    expect(describeTime(at(600, { seconds: 31, evaluations: 1, rows: 1 }), lora))
      .toBe('about 10 min on this CPU, of which under a minute evaluating 1 row once (measured 190 GFLOP/s x 0.68 for LoRA; an estimate, ±30%)');
    expect(describeTime(at(3600, { seconds: 1800, evaluations: 2, rows: 12_000 }), lora)).toContain(', of which about 30 min evaluating 12,000 rows twice (');
  });

  it('says nothing of it at 5% or less, or when the run does not evaluate', () => {
    const plain = 'about 10 min on this CPU (measured 190 GFLOP/s x 0.68 for LoRA; an estimate, ±30%)';
    expect(describeTime(at(600, { seconds: 30, evaluations: 3, rows: 50 }), lora)).toBe(plain);
    expect(describeTime(at(600, null), lora)).toBe(plain);
  });
});
