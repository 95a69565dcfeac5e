// Warmup as a fraction of the run (train --warmup-ratio): the count is
// transformers', over the run's optimizer steps as its Trainer counts them;
// the setting's limits and its clash with --warmup-steps are refusals naming
// the flags; a resume keeps it; the warnings say what it came to.
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../cli/args.js';
import { resumeConfig, trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import type { ModelSpec } from '../engine/native.js';
import { TRAIN_DEFAULTS } from './config.js';
import { resumedConfig, SettingsError, trainConfigFromSettings, type TrainSettings } from './settings.js';
import { totalSteps } from './trainer.js';
import { settingWarnings } from './warnings.js';
import { percentWords, runWarmupSteps, warmupRatioWords, warmupStepsOfRatio, withRunWarmup } from './warmup.js';

const base: TrainSettings = { model: 'm', data: 'd.jsonl', out: 'o', threads: 2 };
const args = (...argv: string[]) => parseArgs(trainSpec, ['--model', 'm', '--data', 'd.jsonl', '--out', 'o', '--threads', '2', ...argv]);

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('the warmup steps of a fraction, as transformers counts them', () => {
  // [rows, batch size, accumulation, epochs, ratio, optimizer steps, warmup steps], computed with python3 by
  // transformers' own formulas: Trainer: len_dataloader = ceil(rows / batch) (drop_last off), per epoch
  // len_dataloader // accum + (len_dataloader % accum > 0), max_steps = ceil(epochs x that);
  // TrainingArguments.get_warmup_steps: math.ceil(max_steps * ratio)
  const CASES: [number, number, number, number, number, number, number][] = [
    [1000, 4, 8, 3, 0.03, 96, 3], // 2.88
    [37, 4, 3, 2, 0.1, 8, 1], // 10 micro-batches in groups of 3: the last group holds one
    [7, 2, 3, 5, 0.25, 10, 3], // 4 micro-batches per epoch, the second group of 3 holds one
    [400, 1, 1, 1, 0.03, 400, 12],
    [100, 1, 1, 1, 0.07, 100, 8], // 100 * 0.07 = 7.000000000000001 in float64: 8, as in transformers (exact arithmetic says 7)
    [50, 1, 1, 1, 0.14, 50, 8], // the same
    [10, 3, 2, 1, 0.5, 2, 1],
    [1, 1, 1, 1, 0.5, 1, 1], // a fraction of a step rounds up to one
    [1, 1, 1, 1, 0, 1, 0],
    [999, 7, 5, 4, 0.06, 116, 7],
    [10, 2, 2, 3, 0.3, 9, 3], // 9 * 0.3 = 2.6999999999999997
  ];

  it('ceil(ratio x the run\'s optimizer steps, after accumulation and epochs)', () => {
    for (const [rows, batchSize, gradAccum, epochs, ratio, steps, warmup] of CASES) {
      const total = totalSteps(rows, { maxSteps: null, epochs, batchSize, gradAccum });
      expect(total, `${rows} rows, batch ${batchSize}, accumulation ${gradAccum}, ${epochs} epochs`).toBe(steps);
      expect(warmupStepsOfRatio(ratio, total), `${ratio} of ${total}`).toBe(warmup);
      const config = trainConfigFromSettings({ ...base, warmupRatio: ratio, epochs, batchSize, gradAccum });
      expect(runWarmupSteps(config, total)).toBe(warmup);
    }
  });

  it('--steps counts the run: the fraction is of them', () => {
    const config = trainConfigFromArgs(args('--warmup-ratio', '0.03', '--steps', '400'));
    expect(config.warmupRatio).toBe(0.03);
    expect(runWarmupSteps(config, totalSteps(123, { maxSteps: config.steps, epochs: config.epochs, batchSize: 4, gradAccum: 2 }))).toBe(12);
  });

  it('without a fraction the steps are as given; a run.json from before the fraction has none', () => {
    const steps = trainConfigFromSettings({ ...base, warmupSteps: 7 });
    expect(steps.warmupRatio).toBeNull();
    expect(runWarmupSteps(steps, 400)).toBe(7);
    expect(withRunWarmup(steps, 400)).toBe(steps);
    const { warmupRatio: _r, ...older } = steps;
    expect(runWarmupSteps(older as typeof steps, 400)).toBe(7);
  });

  it('withRunWarmup records the count beside the fraction, leaving the rest', () => {
    const config = trainConfigFromSettings({ ...base, warmupRatio: 0.03 });
    expect(config.warmupSteps).toBe(0); // not known before the run has counted its steps
    const resolved = withRunWarmup(config, 400);
    expect(resolved).toEqual({ ...config, warmupSteps: 12 });
    expect(config.warmupSteps).toBe(0); // a new object
    // resolving again over the same steps gives the same count
    expect(withRunWarmup(resolved, 400)).toEqual(resolved);
  });

  it('words: "3% of 400 steps = 12 steps"', () => {
    expect(warmupRatioWords(0.03, 400)).toBe('3% of 400 steps = 12 steps');
    expect(warmupRatioWords(0.5, 1)).toBe('50% of 1 step = 1 step');
    expect(warmupRatioWords(0.07, 100)).toBe('7% of 100 steps = 8 steps');
    expect(warmupRatioWords(0.03, 1200, (n, noun) => `${n.toLocaleString('en-US')} ${noun}s`)).toBe('3% of 1,200 steps = 36 steps');
    expect(percentWords(0.125)).toBe('12.5%');
    expect(percentWords(0)).toBe('0%');
  });
});

describe('--warmup-ratio on the command line', () => {
  it('takes a fraction from 0 up to but not including 1, and says the range of a value outside it', () => {
    expect(trainConfigFromArgs(args('--warmup-ratio', '0')).warmupRatio).toBe(0);
    expect(trainConfigFromArgs(args('--warmup-ratio', '0.999')).warmupRatio).toBe(0.999);
    expect(trainConfigFromArgs(args()).warmupRatio).toBe(TRAIN_DEFAULTS.warmupRatio);
    expect(usageError(() => trainConfigFromArgs(args('--warmup-ratio', '1')))).toBe('--warmup-ratio expects a number >= 0 and < 1, got 1');
    expect(usageError(() => trainConfigFromArgs(args('--warmup-ratio', '-0.1')))).toBe('--warmup-ratio expects a number >= 0 and < 1, got -0.1');
    expect(usageError(() => trainConfigFromArgs(args('--warmup-ratio', '3%')))).toBe("--warmup-ratio expects a number >= 0 and < 1, got '3%'");
  });

  it('with --warmup-steps too: refused, naming both', () => {
    expect(usageError(() => trainConfigFromArgs(args('--warmup-steps', '10', '--warmup-ratio', '0.03')))).toBe(
      'give either --warmup-steps or --warmup-ratio, not both (transformers 4 lets the steps win, transformers 5 the fraction: which one was meant cannot be told)');
    // a count of 0 given is given: which one was meant is no clearer
    expect(() => trainConfigFromArgs(args('--warmup-steps', '0', '--warmup-ratio', '0.03'))).toThrow(/not both/);
  });

  it('the app\'s settings: the same limits and refusal, in plain names, on the field warmupRatio', () => {
    const refused = (s: TrainSettings) => {
      try {
        trainConfigFromSettings({ ...base, ...s });
      } catch (e) {
        expect(e).toBeInstanceOf(SettingsError);
        return { field: (e as SettingsError).field, message: (e as Error).message };
      }
      throw new Error('expected a refusal');
    };
    expect(refused({ warmupRatio: 1.5 })).toEqual({ field: 'warmupRatio', message: 'warmupRatio expects a number >= 0 and < 1, got 1.5' });
    expect(refused({ warmupRatio: Number.NaN })).toEqual({ field: 'warmupRatio', message: 'warmupRatio expects a number >= 0 and < 1, got NaN' });
    expect(refused({ warmupRatio: 0.1, warmupSteps: 3 }).field).toBe('warmupRatio');
  });

  it('a resume keeps the fraction and its count, and refuses a new one', () => {
    const started = withRunWarmup(trainConfigFromArgs(args('--warmup-ratio', '0.3', '--epochs', '3')), 9);
    const resumed = resumeConfig(started, '/runs/r', parseArgs(trainSpec, ['--resume', '/runs/r']));
    expect([resumed.warmupRatio, resumed.warmupSteps]).toEqual([0.3, 3]);
    expect(usageError(() => resumeConfig(started, '/runs/r', parseArgs(trainSpec, ['--resume', '/runs/r', '--warmup-ratio', '0.1'])))).toMatch(
      /^--warmup-ratio cannot be given with --resume/);
  });

  it('a run.json whose fraction was damaged is refused on resume, naming the field', () => {
    const started = withRunWarmup(trainConfigFromSettings({ ...base, warmupRatio: 0.3 }), 9);
    for (const bad of ['0.3', 1, -0.5]) {
      const damaged = { ...started, warmupRatio: bad as unknown as number };
      expect(() => resumedConfig(damaged, '/runs/r')).toThrow(
        `/runs/r/run.json: config.warmupRatio is ${JSON.stringify(bad)} (expected a number from 0 up to but not including 1, or null for warmup in steps)`);
    }
    // null (warmup in steps) and absent (a run.json from before the fraction) are fine
    expect(() => resumedConfig({ ...started, warmupRatio: null }, '/runs/r')).not.toThrow();
    const { warmupRatio: _r, ...older } = started;
    expect(() => resumedConfig(older as typeof started, '/runs/r')).not.toThrow();
  });
});

describe('the warmup warning for a fraction', () => {
  const spec = { hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 } as ModelSpec;
  const warnings = (s: TrainSettings, total: number | null) => settingWarnings(trainConfigFromSettings({ ...base, ...s }), spec, total, 2);

  it('says what the fraction came to when it is the whole run, in both wordings, by the warmup field', () => {
    // 0.6 of 2 steps = 1.2: 2 warmup steps, the whole run
    expect(warnings({ warmupRatio: 0.6, steps: 2, lr: 0.001 }, 2)).toEqual([{
      fields: ['warmupSteps', 'steps'],
      cli: "--warmup-ratio 0.6 comes to 2 warmup steps (60% of the run's 2 steps, rounded up), as many as the run has: the learning rate rises for the whole run " +
        'and never reaches --lr 0.001; use a smaller --warmup-ratio, or more --steps',
      app: "Warmup steps: 60% of the run's 2 steps comes to 2 steps (rounded up), as many as the run has: the learning rate rises for the whole run " +
        'and never reaches the Learning rate (0.001); use a smaller fraction, or more Steps',
    }]);
    expect(warnings({ warmupRatio: 0.6 }, 2)[0].fields).toEqual(['warmupSteps', 'epochs']);
    expect(warnings({ warmupRatio: 0.6 }, 2)[0].cli).toMatch(/use a smaller --warmup-ratio$/);
  });

  it('nothing when it leaves steps at the full rate, or when the run\'s steps are not known', () => {
    expect(warnings({ warmupRatio: 0.5, steps: 3 }, 3)).toEqual([]); // 2 of 3
    expect(warnings({ warmupRatio: 0.99, steps: 400 }, 400)).toEqual([]); // 396 of 400
    expect(warnings({ warmupRatio: 0.6 }, null)).toEqual([]);
    expect(warnings({ warmupRatio: 0.6, steps: 0 }, 0)).toEqual([]);
  });
});
