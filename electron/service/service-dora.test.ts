// DoRA through the service, on the bundled demo model: the form's toggle
// (LoRA and QLoRA only), the request's hyper.dora read as a switch into the
// training settings, refused with another method naming its field, and the
// checked run's config and memory estimate (one trained magnitude per output
// of every adapted linear, counted here from the model's own shape).
import { describe, expect, it } from 'vitest';
import type { HyperparameterSpec, RunCheck } from '../api/contract.js';
import { PEFT_DEFAULT_TARGETS } from '../adapters/peft-config.js';
import { openModelFolder } from '../models/folder.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { callRefused } from '../testing/service-calls.js';
import { PathPolicy } from './paths.js';
import { parseRunSettings } from './run-settings.js';

const studio = serviceForTests('service-dora-home');
const { ok, taskTrain } = studio;
const settings = (method: string, hyper: Record<string, unknown>) => ({ model: studio.demo.model, data: taskTrain(), method, hyper: { threads: 1, steps: 2, ...hyper } });

describe('the DoRA toggle of the run form', () => {
  it('is a LoRA / QLoRA setting, off by default, beside rank-stabilized LoRA, with what it does and costs', async () => {
    for (const method of ['lora', 'qlora']) {
      const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method });
      const keys = specs.map((s) => s.key);
      expect(keys.indexOf('dora'), method).toBe(keys.indexOf('rslora') + 1);
      expect(specs.find((s) => s.key === 'dora')).toEqual({
        key: 'dora',
        label: 'DoRA',
        help: 'DoRA (weight-decomposed LoRA): also learns a magnitude for each output of every adapted layer. Often closer to full fine-tuning at low rank; each step is slower (one more product per layer).',
        kind: 'boolean',
        default: false,
        group: 'advanced',
      });
    }
    for (const method of ['full', 'prompt', 'prefix']) {
      const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method });
      expect(specs.some((s) => s.key === 'dora'), method).toBe(false);
    }
  });
});

describe('hyper.dora in a request', () => {
  const request = (hyper: Record<string, unknown>, method = 'lora') => ({ model: '/m', data: '/d.jsonl', method, hyper });

  it('reaches the training settings as the switch it is (false: not given, as the CLI without --dora)', () => {
    const policy = new PathPolicy(null);
    expect(parseRunSettings(request({ dora: true }), policy)).toMatchObject({ errors: [], settings: { method: 'lora', dora: true } });
    expect(parseRunSettings(request({ dora: true }, 'qlora'), policy).settings.dora).toBe(true);
    expect(parseRunSettings(request({ dora: false }), policy).settings.dora).toBe(false);
    expect('dora' in parseRunSettings(request({}), policy).settings).toBe(false);
  });

  it('anything but true or false is invalid, naming hyper.dora', () => {
    const parsed = parseRunSettings(request({ dora: 'yes' }), new PathPolicy(null));
    expect(parsed.errors).toEqual([{ field: 'hyper.dora', message: 'hyper.dora must be true or false, got "yes"' }]);
  });

  it('with a method other than LoRA and QLoRA: invalid, naming hyper.dora (checkRun and startRun)', async () => {
    for (const method of ['prompt', 'prefix', 'full']) {
      const c = await ok<RunCheck>('checkRun', settings(method, { dora: true }));
      expect(c.ok, method).toBe(false);
      expect(c.errors, method).toEqual([{ field: 'hyper.dora', message: 'DoRA applies to the method lora and qlora only' }]);
    }
    expect(await callRefused(studio.service, 'startRun', settings('prompt', { dora: true }))).toMatchObject({ code: 'invalid', field: 'hyper.dora' });
    // off is no choice at all: every method takes it
    expect((await ok<RunCheck>('checkRun', settings('prompt', { dora: false }))).errors).toEqual([]);
  });
});

describe('a DoRA run checked before it starts', () => {
  it('its config says DoRA, and the estimate counts one trained magnitude per output of each adapted linear', async () => {
    const { spec } = await openModelFolder(studio.demo.model);
    // the demo's adapted linears with the default targets: q_proj (heads x head size outputs) and v_proj (kv heads x head size)
    expect([...PEFT_DEFAULT_TARGETS]).toEqual(['q_proj', 'v_proj']);
    const magnitudes = spec.numLayers * (spec.numHeads * spec.headDim + spec.numKvHeads * spec.headDim);
    expect(magnitudes).toBeGreaterThan(0);
    for (const method of ['lora', 'qlora']) {
      const lora = await ok<RunCheck>('checkRun', settings(method, {}));
      const dora = await ok<RunCheck>('checkRun', settings(method, { dora: true }));
      expect(dora.errors, method).toEqual([]);
      expect(lora.config!.lora!.dora, method).toBe(false);
      expect(dora.config!.lora!.dora, method).toBe(true);
      expect(dora.memory!.trainableParams - lora.memory!.trainableParams, method).toBe(magnitudes);
      // each magnitude is saved in F32 beside A and B
      expect(dora.memory!.adapterBytes - lora.memory!.adapterBytes, method).toBeGreaterThanOrEqual(4 * magnitudes);
    }
  });
});
