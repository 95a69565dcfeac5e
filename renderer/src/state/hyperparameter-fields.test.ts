// The hyperparameter form's validation and what lands in studio.hyper.
import { describe, expect, it } from 'vitest';
import type { HyperparameterSpec, RunCheck } from '../../../electron/api/contract.js';
import {
  describeDefault, describeRange, inputFor, isWarmupRatio, keepKnown, parseField, serverErrorsFor, WARMUP_RATIO_KEY, warmupFractionLine, warmupModeOf, withValue,
} from './hyperparameter-fields.js';

const lr: HyperparameterSpec = { key: 'lr', label: 'Learning rate', help: 'step size', kind: 'number', default: 0.0002, min: 0, max: 1, group: 'basic' };
const rank: HyperparameterSpec = { key: 'rank', label: 'Rank', help: 'LoRA rank', kind: 'int', default: 8, min: 1, max: 256, group: 'basic' };
const steps: HyperparameterSpec = { key: 'steps', label: 'Steps', help: 'optimizer steps; empty: run the epochs', kind: 'int', default: null, min: 1, group: 'basic' };
const rslora: HyperparameterSpec = { key: 'rslora', label: 'rsLoRA', help: 'scale by alpha/sqrt(r)', kind: 'boolean', default: false, group: 'advanced' };
const scheduler: HyperparameterSpec = { key: 'scheduler', label: 'Scheduler', help: 'lr schedule', kind: 'choice', default: 'linear', choices: ['linear', 'cosine', 'constant'], group: 'advanced' };
const targets: HyperparameterSpec = {
  key: 'targets', label: 'Target modules', help: 'linears that get adapters', kind: 'list', default: ['q_proj', 'v_proj'],
  choices: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], group: 'advanced',
};
const initText: HyperparameterSpec = { key: 'promptInitText', label: 'Init text', help: 'text the virtual tokens start from', kind: 'choice', default: null, group: 'advanced' };

describe('parseField: numbers', () => {
  it('accepts decimals and scientific notation within the limits', () => {
    expect(parseField(lr, '2e-4')).toEqual({ ok: true, value: 0.0002 });
    expect(parseField(lr, ' 0.001 ')).toEqual({ ok: true, value: 0.001 });
    expect(parseField(lr, '1')).toEqual({ ok: true, value: 1 });
    expect(parseField(lr, '0')).toEqual({ ok: true, value: 0 });
  });
  it('refuses what is not a number, or out of range', () => {
    expect(parseField(lr, 'abc')).toEqual({ ok: false, error: 'Enter a number, e.g. 0.0002 or 2e-4.' });
    expect(parseField(lr, '0x10')).toEqual({ ok: false, error: 'Enter a number, e.g. 0.0002 or 2e-4.' });
    expect(parseField(lr, 'Infinity')).toEqual({ ok: false, error: 'Enter a number, e.g. 0.0002 or 2e-4.' });
    expect(parseField(lr, '1e999')).toEqual({ ok: false, error: 'Enter a finite number.' });
    expect(parseField(lr, '-0.1')).toEqual({ ok: false, error: 'Must be at least 0.' });
    expect(parseField(lr, '1.5')).toEqual({ ok: false, error: 'Must be at most 1.' });
    expect(parseField(lr, '')).toEqual({ ok: false, error: 'Enter a value (default 0.0002).' });
  });
  it('wants whole numbers for int fields', () => {
    expect(parseField(rank, '16')).toEqual({ ok: true, value: 16 });
    expect(parseField(rank, '1e1')).toEqual({ ok: true, value: 10 });
    expect(parseField(rank, '8.5')).toEqual({ ok: false, error: 'Enter a whole number.' });
    expect(parseField(rank, 'eight')).toEqual({ ok: false, error: 'Enter a whole number.' });
    expect(parseField(rank, '0')).toEqual({ ok: false, error: 'Must be at least 1.' });
    expect(parseField(rank, '257')).toEqual({ ok: false, error: 'Must be at most 256.' });
    expect(parseField(rank, '256')).toEqual({ ok: true, value: 256 });
  });
  it('reads an empty box as none where none is the default', () => {
    expect(parseField(steps, '')).toEqual({ ok: true, value: null });
    expect(parseField(steps, '  ')).toEqual({ ok: true, value: null });
    expect(parseField(steps, '0')).toEqual({ ok: false, error: 'Must be at least 1.' });
    expect(parseField(steps, '120')).toEqual({ ok: true, value: 120 });
  });
});

describe('parseField: other kinds', () => {
  it('booleans, choices, lists and free text', () => {
    expect(parseField(rslora, true)).toEqual({ ok: true, value: true });
    expect(parseField(rslora, false)).toEqual({ ok: true, value: false });
    expect(parseField(scheduler, 'cosine')).toEqual({ ok: true, value: 'cosine' });
    expect(parseField(scheduler, 'step')).toEqual({ ok: false, error: 'Choose one of linear, cosine, constant.' });
    expect(parseField(targets, 'q_proj, k_proj ,v_proj,')).toEqual({ ok: true, value: ['q_proj', 'k_proj', 'v_proj'] });
    expect(parseField(targets, 'q_proj, qproj')).toEqual({ ok: false, error: 'Unknown: qproj. Use any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.' });
    expect(parseField(targets, ' , ')).toEqual({ ok: false, error: 'Enter at least one name, separated by commas.' });
    expect(parseField(initText, '')).toEqual({ ok: true, value: null });
    expect(parseField(initText, 'Classify the review:')).toEqual({ ok: true, value: 'Classify the review:' });
  });
});

describe('what the inputs show', () => {
  it('renders values and defaults', () => {
    expect(inputFor(lr, 0.0002)).toBe('0.0002');
    expect(inputFor(steps, null)).toBe('');
    expect(inputFor(targets, ['q_proj', 'v_proj'])).toBe('q_proj, v_proj');
    expect(inputFor(rslora, true)).toBe(true);
    expect(describeDefault(lr)).toBe('0.0002');
    expect(describeDefault(steps)).toBe('none');
    expect(describeDefault(rslora)).toBe('off');
    expect(describeDefault(targets)).toBe('q_proj, v_proj');
    expect(describeRange(rank)).toBe('1 to 256');
    expect(describeRange(steps)).toBe('at least 1');
    expect(describeRange({ ...lr, min: undefined })).toBe('at most 1');
    expect(describeRange(rslora)).toBe('');
  });
  it('round-trips every default through its input', () => {
    for (const spec of [lr, rank, steps, rslora, scheduler, targets, initText]) {
      expect(parseField(spec, inputFor(spec, spec.default))).toEqual({ ok: true, value: spec.default });
    }
  });
});

describe('studio.hyper keeps only what differs from the default', () => {
  it('adds changes and drops values set back to the default', () => {
    let hyper = {};
    hyper = withValue(hyper, lr, 0.001);
    hyper = withValue(hyper, rank, 8); // the default: not stored
    hyper = withValue(hyper, targets, ['q_proj', 'k_proj', 'v_proj']);
    hyper = withValue(hyper, steps, 40);
    expect(hyper).toEqual({ lr: 0.001, targets: ['q_proj', 'k_proj', 'v_proj'], steps: 40 });
    hyper = withValue(hyper, lr, Number('2e-4')); // typed differently, same default
    hyper = withValue(hyper, targets, ['q_proj', 'v_proj']);
    hyper = withValue(hyper, steps, null);
    expect(hyper).toEqual({});
  });
  it('never mutates the settings it is given', () => {
    const before = { lr: 0.001 };
    const after = withValue(before, lr, 0.0002);
    expect(before).toEqual({ lr: 0.001 });
    expect(after).toEqual({});
  });
  it('forgets settings the method does not have', () => {
    expect(keepKnown({ lr: 0.01, rank: 16, virtualTokens: 20 }, [lr, steps])).toEqual({ lr: 0.01 });
  });
  it('puts the server\'s field errors under their fields', () => {
    const errors = [{ field: 'hyper.lr', message: 'too high for sgd' }, { field: 'data', message: 'no rows' }, { field: 'hyper.rank', message: 'r > hidden' }];
    expect(serverErrorsFor(errors, 'lr')).toEqual(['too high for sgd']);
    expect(serverErrorsFor(errors, 'rank')).toEqual(['r > hidden']);
    expect(serverErrorsFor(errors, 'steps')).toEqual([]);
    expect(serverErrorsFor(undefined, 'lr')).toEqual([]);
  });
});

describe('the warmup field: in steps or as a fraction of the run', () => {
  // the service's spec of the fraction (electron/service/hyperparameters.ts): none by default, 0 up to but not including 1
  const ratio: HyperparameterSpec = {
    key: WARMUP_RATIO_KEY as HyperparameterSpec['key'], label: 'Warmup fraction', help: 'a fraction of the run', kind: 'number', default: null, min: 0, below: 1, group: 'advanced',
  };

  it('knows the fraction\'s spec, and which way the settings give the warmup', () => {
    expect(isWarmupRatio(ratio)).toBe(true);
    expect(isWarmupRatio(steps)).toBe(false);
    expect(warmupModeOf({})).toBe('steps');
    expect(warmupModeOf({ warmupSteps: 10 })).toBe('steps');
    expect(warmupModeOf(withValue({}, ratio, 0.03))).toBe('fraction');
    // back to none (its default): steps again
    expect(warmupModeOf(withValue(withValue({}, ratio, 0.03), ratio, null))).toBe('steps');
  });

  it('takes a fraction from 0 up to but not including 1, empty for none', () => {
    expect(parseField(ratio, '0.03')).toEqual({ ok: true, value: 0.03 });
    expect(parseField(ratio, '0')).toEqual({ ok: true, value: 0 });
    expect(parseField(ratio, '')).toEqual({ ok: true, value: null });
    expect(parseField(ratio, '1')).toEqual({ ok: false, error: 'Must be less than 1.' });
    expect(parseField(ratio, '-0.1')).toEqual({ ok: false, error: 'Must be at least 0.' });
    expect(describeRange(ratio)).toBe('0 up to but not including 1');
  });

  it('says how to write a percentage or a decimal comma as the fraction, where other numbers get the generic hint', () => {
    const hint = { ok: false, error: 'Enter the fraction as a number: type 0.03 for 3%.' };
    expect(parseField(ratio, '3%')).toEqual(hint);
    expect(parseField(ratio, '0,03')).toEqual(hint);
    expect(parseField(ratio, 'abc')).toEqual(hint);
    // the learning rate's examples stay with the numbers they fit
    expect(parseField(lr, '3%')).toEqual({ ok: false, error: 'Enter a number, e.g. 0.0002 or 2e-4.' });
    expect(parseField(rank, '3%')).toEqual({ ok: false, error: 'Enter a whole number.' });
  });

  it('says what the fraction comes to over the steps the check counted, rounded up as the run does', () => {
    const check = (steps: number) => ({ time: { steps, tokens: 0, seconds: null, text: '' }, config: null });
    expect(warmupFractionLine(0.03, check(400))).toBe('3% of 400 steps = 12 steps');
    // 111 x 0.03 = 3.33: 4; 1,200 written as the app writes counts
    expect(warmupFractionLine(0.03, check(111))).toBe('3% of 111 steps = 4 steps');
    expect(warmupFractionLine(0.03, check(1200))).toBe('3% of 1,200 steps = 36 steps');
    expect(warmupFractionLine(0.5, check(1))).toBe('50% of 1 step = 1 step');
    // no fraction, or no check yet
    expect(warmupFractionLine(null, check(400))).toBeNull();
    expect(warmupFractionLine(0.03, null)).toBeNull();
  });

  it('without the check\'s time estimate, says the steps the check resolved for the fraction (not 0), and nothing for another fraction', () => {
    // the check's configuration as the service answers it: the fraction and its steps over the run (12 of 400)
    const check = (warmupRatio: number | null, warmupSteps: number) => ({ time: null, config: { warmupRatio, warmupSteps } as RunCheck['config'] });
    expect(warmupFractionLine(0.03, check(0.03, 12))).toBe('3% of the run = 12 steps');
    expect(warmupFractionLine(0.5, check(0.5, 1))).toBe('50% of the run = 1 step');
    // a check of 0.03 while 0.05 is typed, or a check with warmup in steps: the page says the count is to come
    expect(warmupFractionLine(0.05, check(0.03, 12))).toBeNull();
    expect(warmupFractionLine(0.03, check(null, 12))).toBeNull();
    expect(warmupFractionLine(0.03, { time: null, config: null })).toBeNull();
  });
});
