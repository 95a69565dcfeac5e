// NEFTune through the service, on the bundled demo model: the run form's
// field (every method, advanced, 0 = off), the request's hyper.neftuneAlpha
// read into the training settings or refused naming the field, the checked
// run's config, a started run whose run.json records it, and a resume that
// may not change it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HyperparameterSpec, RunCheck, StartedRun } from '../api/contract.js';
import { TRAIN_METHODS } from '../training/config.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { callRefused, runEnd } from '../testing/service-calls.js';
import { PathPolicy } from './paths.js';
import { parseResumeRequest, parseRunSettings } from './run-settings.js';

const studio = serviceForTests('service-neftune-home');
const { ok, taskTrain, events } = studio;
const settings = (method: string, hyper: Record<string, unknown>) => ({ model: studio.demo.model, data: taskTrain(), method, hyper: { threads: 1, steps: 2, batchSize: 4, ...hyper } });

const HELP = 'Adds small random noise to the input embeddings while training (NEFTune). Often improves instruction-following answers; ' +
  '5 is a common value, 0 turns it off. Nothing changes at evaluation or when the model answers.';

describe('the NEFTune field of the run form', () => {
  it('every method has it: advanced, a number from 0, off by default, after gradient clipping', async () => {
    for (const method of TRAIN_METHODS) {
      const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method });
      const keys = specs.map((s) => s.key);
      expect(keys.indexOf('neftuneAlpha'), method).toBe(keys.indexOf('clip') + 1);
      expect(specs.find((s) => s.key === 'neftuneAlpha'), method).toEqual({
        key: 'neftuneAlpha', label: 'NEFTune noise (alpha)', help: HELP, kind: 'number', default: 0, min: 0, max: 10000, group: 'advanced',
      });
    }
  });
});

describe('hyper.neftuneAlpha in a request', () => {
  const request = (hyper: Record<string, unknown>) => ({ model: '/m', data: '/d.jsonl', method: 'prompt', hyper });
  const policy = new PathPolicy(null);

  it('reaches the training settings as given; absent, it is not given', () => {
    expect(parseRunSettings(request({ neftuneAlpha: 5 }), policy)).toMatchObject({ errors: [], settings: { method: 'prompt', neftuneAlpha: 5 } });
    expect(parseRunSettings(request({ neftuneAlpha: 0 }), policy).settings.neftuneAlpha).toBe(0);
    expect('neftuneAlpha' in parseRunSettings(request({}), policy).settings).toBe(false);
  });

  it('negative, not finite or not a number: invalid, naming hyper.neftuneAlpha', () => {
    const errorsOf = (v: unknown) => parseRunSettings(request({ neftuneAlpha: v }), policy).errors;
    expect(errorsOf(-1)).toEqual([{ field: 'hyper.neftuneAlpha', message: 'hyper.neftuneAlpha must be a number >= 0 and <= 10000, got -1' }]);
    // NaN and Infinity come over the Electron bridge (structured clone), not over JSON
    expect(errorsOf(Number.NaN)).toEqual([{ field: 'hyper.neftuneAlpha', message: 'hyper.neftuneAlpha must be a number >= 0 and <= 10000, got NaN' }]);
    expect(errorsOf(Number.POSITIVE_INFINITY)).toEqual([{ field: 'hyper.neftuneAlpha', message: 'hyper.neftuneAlpha must be a number >= 0 and <= 10000, got Infinity' }]);
    expect(errorsOf('5')).toEqual([{ field: 'hyper.neftuneAlpha', message: 'hyper.neftuneAlpha must be a number >= 0 and <= 10000, got "5"' }]);
  });

  it('checkRun refuses a negative one by its field, startRun too; a valid one is in the checked config', async () => {
    const bad = await ok<RunCheck>('checkRun', settings('lora', { neftuneAlpha: -0.5 }));
    expect(bad.ok).toBe(false);
    // in the form's words (the request's reader says hyper.neftuneAlpha, above)
    expect(bad.errors).toEqual([{ field: 'hyper.neftuneAlpha', message: 'NEFTune noise (alpha) must be from 0 to 10000, got -0.5' }]);
    expect(await callRefused(studio.service, 'startRun', settings('lora', { neftuneAlpha: -0.5 }))).toMatchObject({ code: 'invalid', field: 'hyper.neftuneAlpha' });
    for (const method of ['lora', 'full', 'prefix']) {
      const good = await ok<RunCheck>('checkRun', settings(method, { neftuneAlpha: 5 }));
      expect(good.errors, method).toEqual([]);
      expect(good.config!.neftuneAlpha, method).toBe(5);
    }
    expect((await ok<RunCheck>('checkRun', settings('lora', {}))).config!.neftuneAlpha).toBe(0);
  });

  it('a resume request cannot change it (the run keeps its run.json\'s)', () => {
    expect(() => parseResumeRequest({ runDir: '/r', neftuneAlpha: 0 }, policy)).toThrow(/^neftuneAlpha is not a resume setting/);
  });
});

describe('a run started with NEFTune', () => {
  it('trains with it and its run.json records it', { timeout: 120_000 }, async () => {
    const started = await ok<StartedRun>('startRun', settings('lora', { neftuneAlpha: 5 }));
    const end = await runEnd(studio.service, events, started.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    const record = JSON.parse(readFileSync(join(started.runDir, 'run.json'), 'utf8'));
    expect(record.config.neftuneAlpha).toBe(5);
    expect(record.steps_done).toBe(2);
  });
});
