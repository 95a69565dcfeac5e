// checkRun's warnings on the real bundled demo model: the settings the run
// would accept but that look like a slip, named by the form's fields and in
// its words, before anything starts; the run's step count they are judged
// against is the one the run itself then reports, and a changed data file is
// counted again.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, DemoPaths, HyperparameterSpec, RunCheck, RunEvent, StartedRun } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { callOk, runEnd, runEventsOf } from '../testing/service-calls.js';
import { FORM_LABEL } from '../training/warnings.js';
import { createStudioService, type StudioService } from './service.js';

const home = tempDir('service-warnings-home');
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
const events: ApiEvent[] = [];
const ok = <T>(method: 'demoPaths' | 'checkRun' | 'startRun' | 'hyperparameters', request: unknown) => callOk<T>(service, method, request);
const taskTrain = () => demo.datasets.find((d) => d.name === 'task-train')!.path;
const taskRows = () => readFileSync(taskTrain(), 'utf8').trim().split('\n');
const check = (hyper: Record<string, unknown>, data = taskTrain()) => ok<RunCheck>('checkRun', { model: demo.model, data, method: 'lora', hyper: { threads: 1, ...hyper } });

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  service.onEvent((e) => events.push(e));
  demo = await ok<DemoPaths>('demoPaths', {});
});
afterAll(() => service.close());

describe('checkRun warnings', () => {
  it('none for the method\'s defaults, nor for a warmup shorter than the run', async () => {
    expect((await check({})).warnings).toEqual([]);
    expect((await check({ warmupSteps: 10, steps: 11 })).warnings).toEqual([]);
  });

  it('warmup past the end of a run counted in epochs: its rows, batches and accumulation, as the run counts them', async () => {
    // 111 rows of the demo's task, every one with an answer to learn: 1 epoch at batch 1 is 111 steps
    expect(taskRows()).toHaveLength(111);
    const c = await check({ warmupSteps: 200 });
    expect(c.ok).toBe(true); // a warning never refuses
    expect(c.warnings).toEqual([{
      fields: ['warmupSteps', 'epochs'],
      message: "Warmup steps 200 is not below the run's 111 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use fewer warmup steps",
    }]);
    // 2 epochs of ceil(ceil(111 / 4) / 2) = 14 steps: 28
    expect((await check({ warmupSteps: 28, epochs: 2, batchSize: 4, gradAccum: 2 })).warnings[0].message).toContain("the run's 28 steps");
    expect((await check({ warmupSteps: 27, epochs: 2, batchSize: 4, gradAccum: 2 })).warnings).toEqual([]);
    // with Steps set the run is that long, and Steps is the other field named
    expect((await check({ warmupSteps: 5, steps: 5 })).warnings.map((w) => w.fields)).toEqual([['warmupSteps', 'steps']]);
  });

  it('evaluate-every without an eval split, a rank above the demo\'s smallest adapted dimension, more threads than the machine', async () => {
    const c = await check({ evalEvery: 5, rank: 65, threads: 100_000 });
    expect(c.ok).toBe(true);
    expect(c.warnings.map((w) => w.fields)).toEqual([['evalEvery', 'evalSplit'], ['rank', 'targets'], ['threads']]);
    expect(c.warnings[0].message).toBe('Evaluate every 5 has no effect while Eval split is 0: no rows are held out to evaluate on; set Eval split (e.g. 0.1), or set Evaluate every back to 0');
    // the demo: 2 kv heads of 32 -> v_proj is 64 x 192, the smallest of the default targets (q_proj, v_proj)
    expect(c.warnings[1].message).toContain('(v_proj is 64 x 192): an update there cannot have a rank above 64');
    expect(c.warnings[1].message).toMatch(/use a LoRA rank of 64 or less$/);
    expect(c.warnings[2].message).toMatch(/^CPU threads 100000 is more than this machine's \d+ hardware threads?:/);
    expect((await check({ rank: 64 })).warnings).toEqual([]);
    // refused settings are not judged: their errors come first
    const bad = await check({ rank: 65, lr: -1 });
    expect(bad.errors.map((e) => e.field)).toEqual(['hyper.lr']);
    expect(bad.warnings).toEqual([]);
  });

  it('the form\'s labels are the ones the warnings use', async () => {
    const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: demo.model, method: 'lora' });
    for (const [key, label] of Object.entries(FORM_LABEL)) expect(specs.find((s) => s.key === key)?.label, key).toBe(label);
  });

  it('a data file that changes is counted again', async () => {
    const data = join(tempDir('warn-data'), 'rows.jsonl');
    writeFileSync(data, taskRows().slice(0, 40).join('\n') + '\n');
    expect((await check({ warmupSteps: 50 }, data)).warnings[0].message).toContain("the run's 40 steps");
    writeFileSync(data, taskRows().slice(0, 60).join('\n') + '\n');
    expect((await check({ warmupSteps: 50 }, data)).warnings).toEqual([]);
  });

  it('the run then takes the steps the warning counted, and logs the same warning in the command line\'s words', async () => {
    // 7 rows, 2 held out for evaluation (eval split 0.25 of 7, rounded up), batch 2: ceil(5 / 2) = 3 steps
    const data = join(tempDir('warn-run'), 'rows.jsonl');
    writeFileSync(data, taskRows().slice(0, 7).join('\n') + '\n');
    const hyper = { warmupSteps: 3, batchSize: 2, evalSplit: 0.25, threads: 1 };
    const c = await check(hyper, data);
    expect(c.warnings.map((w) => w.message)).toEqual([expect.stringContaining("Warmup steps 3 is not below the run's 3 steps")]);
    const started = await ok<StartedRun>('startRun', { model: demo.model, data, method: 'lora', hyper });
    const end = await runEnd(service, events, started.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    const seen = runEventsOf(events, started.runId);
    expect((seen.find((e) => e.type === 'started') as Extract<RunEvent, { type: 'started' }>).totalSteps).toBe(3);
    const logs = seen.filter((e): e is Extract<RunEvent, { type: 'log' }> => e.type === 'log').map((e) => e.message);
    expect(logs).toContain("warning: --warmup-steps 3 is not below the run's 3 steps: the learning rate rises for the whole run and never reaches --lr 0.0002; use fewer warmup steps");
  }, 60_000);
});
