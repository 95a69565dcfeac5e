// The run form's warmup as a fraction of the run (hyper.warmupRatio, `train
// --warmup-ratio`) through the real service on the bundled demo model: the
// form offers it with its limits; a value outside them, or with warmupSteps
// too, is refused naming the field in the form's words; the check judges
// the steps it comes to over the run it counts (111 rows: 111 steps at batch 1).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoPaths, HyperparameterSpec, RunCheck } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { callOk } from '../testing/service-calls.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('service-warmup-ratio-home');

let service: StudioService;
let demo: DemoPaths;
const ok = <T>(method: 'demoPaths' | 'checkRun' | 'hyperparameters', request: unknown) => callOk<T>(service, method, request);
const check = (hyper: Record<string, unknown>) =>
  ok<RunCheck>('checkRun', { model: demo.model, data: demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'lora', hyper: { threads: 1, ...hyper } });

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await ok<DemoPaths>('demoPaths', {});
});
afterAll(() => service.close());

describe('hyper.warmupRatio', () => {
  it('is offered beside Warmup steps: a number from 0 up to but not including 1, none by default', async () => {
    const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: demo.model, method: 'lora' });
    expect(specs.find((s) => s.key === 'warmupRatio')).toMatchObject({ label: 'Warmup fraction', kind: 'number', default: null, min: 0, below: 1, group: 'advanced' });
  });

  it('the check resolves it as the run will: the fraction kept, warned against when it comes to the whole run', async () => {
    const c = await check({ warmupRatio: 0.03 });
    expect(c.ok).toBe(true);
    // the configuration the run would use: the fraction, and the steps it comes to over the run's 111
    // (ceil(111 x 0.03 = 3.33) = 4, as the form says it and the run records it)
    expect(c.config).toMatchObject({ warmupRatio: 0.03, warmupSteps: 4 });
    expect(c.time?.steps).toBe(111);
    // the product in float64, as transformers takes it: 100 x 0.07 = 7.000000000000001, so 8 steps, not 7
    expect((await check({ warmupRatio: 0.07, steps: 100 })).config).toMatchObject({ warmupRatio: 0.07, warmupSteps: 8 });
    // a warmup in steps is as given
    expect((await check({ warmupSteps: 5 })).config).toMatchObject({ warmupRatio: null, warmupSteps: 5 });
    expect(c.warnings).toEqual([]);
    const long = await check({ warmupRatio: 0.5, steps: 1 });
    expect(long.warnings).toEqual([{
      fields: ['warmupSteps', 'steps'],
      message: "Warmup steps: 50% of the run's 1 step comes to 1 step (rounded up), as many as the run has: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use a smaller fraction, or more Steps",
    }]);
  });

  it('outside its limits, or with warmupSteps too: refused, naming the field and the range in the form\'s words', async () => {
    const over = await check({ warmupRatio: 1 });
    expect(over.ok).toBe(false);
    expect(over.errors).toEqual([{ field: 'hyper.warmupRatio', message: 'Warmup fraction must be from 0 up to but not including 1, got 1' }]);
    const both = await check({ warmupRatio: 0.1, warmupSteps: 5 });
    expect(both.errors).toEqual([{
      field: 'hyper.warmupRatio',
      message: 'give either Warmup steps or Warmup fraction, not both (transformers 4 lets the steps win, transformers 5 the fraction: which one was meant cannot be told)',
    }]);
  });
});
