// @vitest-environment node
// The form's limits against the run's: for every numeric field the service
// offers (each method, the demo model), the form accepts a value exactly when
// the resolver's own check (limitProblem over SETTING_LIMITS) does, at and
// around every bound, and the help says the bound as the check holds it
// (an exclusive one is never said as "at least").
import { describe, expect, it } from 'vitest';
import type { HyperparameterSpec, TrainMethod } from '../../../electron/api/contract.js';
import { openModelFolder } from '../../../electron/models/folder.js';
import { demoPaths } from '../../../electron/service/demo.js';
import { hyperparameterSpecs } from '../../../electron/service/hyperparameters.js';
import { APP_STEPS_LIMIT, limitProblem, SETTING_LIMITS, type LimitedField, type SettingLimit } from '../../../electron/training/settings.js';
import { describeRange, parseField } from './hyperparameter-fields.js';

const METHODS: TrainMethod[] = ['lora', 'qlora', 'full', 'prompt', 'prefix'];

/** The run's limit of a form field: SETTING_LIMITS, the app's steps (at least 1), the model's positions for seqLen. */
function runLimit(spec: HyperparameterSpec, positions: number): SettingLimit {
  if (spec.key === 'steps') return APP_STEPS_LIMIT;
  const limit = SETTING_LIMITS[spec.key as LimitedField] as SettingLimit;
  return spec.key === 'seqLen' ? { ...limit, max: positions } : limit;
}

/** Values at, just inside and just outside each bound of the limit. */
function probes(limit: SettingLimit): number[] {
  const near = (b: number) => (limit.kind === 'int' ? [b - 1, b, b + 1] : [b - 0.5, b - 1e-9, b, b + 1e-9, b + 0.5]);
  return [limit.min, limit.max, limit.above, limit.below].filter((b): b is number => b !== undefined).flatMap(near);
}

describe('the form\'s numeric limits are the run\'s', () => {
  it('accepts a value exactly when the run does, at every bound of every field', async () => {
    const { spec: model } = await openModelFolder(demoPaths().model);
    for (const method of METHODS) {
      for (const spec of hyperparameterSpecs(method, model, []).filter((s) => s.kind === 'int' || s.kind === 'number')) {
        // the model's positions left after the virtual tokens: the form's own max for seqLen
        const limit = runLimit(spec, spec.key === 'seqLen' ? spec.max! : Number.POSITIVE_INFINITY);
        const values = probes(limit);
        expect(values.length, spec.key).toBeGreaterThan(0);
        for (const v of values) {
          const runTakes = limitProblem(v, limit) === null;
          expect(parseField(spec, String(v)).ok, `${method} ${spec.key} = ${v}`).toBe(runTakes);
        }
      }
    }
  });

  it('says an exclusive bound as exclusive: LoRA alpha, LoRA dropout, eval split', async () => {
    const { spec: model } = await openModelFolder(demoPaths().model);
    const specs = new Map(hyperparameterSpecs('lora', model, []).map((s) => [s.key, s]));
    expect(describeRange(specs.get('alpha')!)).toBe('more than 0');
    expect(parseField(specs.get('alpha')!, '0')).toEqual({ ok: false, error: 'Must be more than 0.' });
    expect(describeRange(specs.get('dropout')!)).toBe('0 up to but not including 1');
    expect(parseField(specs.get('dropout')!, '1')).toEqual({ ok: false, error: 'Must be less than 1.' });
    expect(parseField(specs.get('dropout')!, '0')).toEqual({ ok: true, value: 0 });
    expect(describeRange(specs.get('evalSplit')!)).toBe('0 up to but not including 1');
    // inclusive ones stay as they were
    expect(describeRange(specs.get('rank')!)).toBe('at least 1');
    expect(describeRange(specs.get('quantBlocksize') ?? hyperparameterSpecs('qlora', model, []).find((s) => s.key === 'quantBlocksize')!)).toBe('32 to 4096');
  });

  it('words the bounds of a made-up field with an exclusive bound on each side, or one of each', () => {
    const base: HyperparameterSpec = { key: 'lr', label: 'x', help: '', kind: 'number', default: 0.5, group: 'basic' };
    expect(describeRange({ ...base, above: 0, below: 1 })).toBe('more than 0 and less than 1');
    expect(describeRange({ ...base, above: 0, max: 1 })).toBe('more than 0 and at most 1');
    expect(describeRange({ ...base, min: 0, max: 1 })).toBe('0 to 1');
    expect(describeRange({ ...base, below: 1 })).toBe('less than 1');
  });
});
