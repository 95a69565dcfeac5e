// A run's settings that look like a slip, once it runs: on the real bundled
// demo model with a warmup as long as the run, the started event carries the
// warning structured (its fields, the command line's words, the app's), the
// log keeps the "warning: " line word for word, and run.json keeps the
// warning for a page that opens later (runHistory reads it back); a resumed
// session judges its settings again and says so the same ways; a damaged
// record loses only what cannot be read.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, DemoPaths, RunEvent, RunHistory, StartedRun } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { callOk, runEnd, runEventsOf } from '../testing/service-calls.js';
import { createStudioService, type StudioService } from './service.js';

const home = tempDir('service-run-warnings-home');
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
const events: ApiEvent[] = [];
const ok = <T>(method: 'demoPaths' | 'startRun' | 'resumeRun' | 'cancelRun' | 'runHistory', request: unknown) => callOk<T>(service, method, request);

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  service.onEvent((e) => events.push(e));
  demo = await ok<DemoPaths>('demoPaths', {});
});
afterAll(() => service.close());

/** Resolves once run `runId` has reported step `step`. */
function stepped(runId: string, step: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (runEventsOf(events, runId).some((e) => e.type === 'step' && e.step >= step)) {
        off();
        resolve();
      }
    };
    const off = service.onEvent(check);
    check();
  });
}

// written out here, not produced by the code under test: the two wordings of the one warning
const CLI = "--warmup-steps 100000 is not below the run's 100000 steps: the learning rate rises for the whole run and never reaches --lr 0.0002; use fewer warmup steps";
const APP = "Warmup steps 100000 is not below the run's 100000 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); " +
  'use fewer warmup steps, or more Steps';
const WARNING = { fields: ['warmupSteps', 'steps'], cli: CLI, app: APP };

type Started = Extract<RunEvent, { type: 'started' }>;

describe('a run whose warmup is as long as the run', () => {
  it('carries the warning in its started event and run.json, logs the CLI line unchanged, and a resume says it again', async () => {
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    const hyper = { steps: 100_000, warmupSteps: 100_000, saveEvery: 1, threads: 1 };
    const started = await ok<StartedRun>('startRun', { model: demo.model, data, method: 'lora', hyper });
    await stepped(started.runId, 2);

    const seen = runEventsOf(events, started.runId);
    const first = seen.find((e): e is Started => e.type === 'started')!;
    expect(first.warnings).toEqual([WARNING]);
    // the log: the same line as the CLI prints, and only once
    const logs = seen.filter((e): e is Extract<RunEvent, { type: 'log' }> => e.type === 'log').map((e) => e.message);
    expect(logs.filter((m) => m.startsWith('warning: '))).toEqual([`warning: ${CLI}`]);
    // run.json holds it from the start (a page that opens mid-run reads it)
    const record = () => JSON.parse(readFileSync(join(started.runDir, 'run.json'), 'utf8')) as { resolved: { warnings: unknown } };
    expect(record().resolved.warnings).toEqual([WARNING]);

    await ok('cancelRun', { runId: started.runId });
    expect((await runEnd(service, events, started.runId)).type).toBe('cancelled');
    expect((await ok<RunHistory>('runHistory', { runDir: started.runDir })).warnings).toEqual([WARNING]);

    // the resumed session reads the data and judges its settings again: the same warning, said the same ways
    const resumed = await ok<StartedRun>('resumeRun', { runDir: started.runDir });
    await stepped(resumed.runId, 4);
    const again = runEventsOf(events, resumed.runId);
    const restarted = again.find((e): e is Started => e.type === 'started')!;
    expect(restarted.resumedFrom).toBeGreaterThanOrEqual(2);
    expect(restarted.warnings).toEqual([WARNING]);
    expect(again.filter((e) => e.type === 'log' && e.message.startsWith('warning: ')).map((e) => (e as { message: string }).message)).toEqual([`warning: ${CLI}`]);
    expect(record().resolved.warnings).toEqual([WARNING]);
    await ok('cancelRun', { runId: resumed.runId });
    expect((await runEnd(service, events, resumed.runId)).type).toBe('cancelled');
  }, 60_000);

  it('a run with nothing that looks like a slip: none in the event, the record or its history', async () => {
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    const started = await ok<StartedRun>('startRun', { model: demo.model, data, method: 'lora', hyper: { steps: 2, threads: 1 } });
    expect((await runEnd(service, events, started.runId)).type).toBe('finished');
    expect(runEventsOf(events, started.runId).find((e): e is Started => e.type === 'started')!.warnings).toEqual([]);
    expect((await ok<RunHistory>('runHistory', { runDir: started.runDir })).warnings).toEqual([]);

    // a run.json whose warnings were damaged (or written by another version): the readable ones, fields this version names
    const file = join(started.runDir, 'run.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { resolved: Record<string, unknown> };
    record.resolved.warnings = [null, 'text', { fields: ['steps'], cli: 1, app: 'x' }, { ...WARNING, fields: ['warmupSteps', 'loraPlus', 7] }];
    writeFileSync(file, JSON.stringify(record));
    expect((await ok<RunHistory>('runHistory', { runDir: started.runDir })).warnings).toEqual([{ ...WARNING, fields: ['warmupSteps'] }]);
    record.resolved.warnings = { not: 'a list' };
    writeFileSync(file, JSON.stringify(record));
    expect((await ok<RunHistory>('runHistory', { runDir: started.runDir })).warnings).toEqual([]);
  }, 60_000);
});
