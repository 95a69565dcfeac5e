// The run form's evaluation file (RunSettings.evalData) through the studio.service,
// on the bundled demo model and its held-out task file: checkRun resolves it
// as `train --eval-data` does, refuses it beside an eval split (naming both)
// and a file that is not there; a started run evaluates on it and reports its
// rows in the started event and run.json.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DatasetReport, RunCheck, StartedRun } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { runEnd, runEventsOf } from '../testing/service-calls.js';


const studio = serviceForTests('service-eval-data-home');
const { ok, events } = studio;
const dataset = (name: string) => studio.demo.datasets.find((d) => d.name === name)!.path;
const settings = (hyper: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  model: studio.demo.model,
  data: dataset('task-train'),
  method: 'lora',
  hyper: { threads: 2, batchSize: 4, ...hyper },
  ...extra,
});
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').length;

describe('checkRun with an evaluation file', () => {
  it('resolves it as train --eval-data does; Eval every is no slip with it', async () => {
    const c = await ok<RunCheck>('checkRun', settings({ steps: 2, evalEvery: 1 }, { evalData: dataset('task-eval') }));
    expect(c.errors).toEqual([]);
    expect(c.config).toMatchObject({ evalData: dataset('task-eval'), evalSplit: 0 });
    expect(c.warnings).toEqual([]);
    // the same settings without it: nothing to evaluate on, said as a warning
    const without = await ok<RunCheck>('checkRun', settings({ steps: 2, evalEvery: 1 }));
    expect(without.warnings.map((w) => w.fields)).toEqual([['evalEvery', 'evalSplit']]);
  });

  it('beside an eval split it is refused on the eval split field, naming both; a missing file on its own field', async () => {
    const both = await ok<RunCheck>('checkRun', settings({ steps: 2, evalSplit: 0.1 }, { evalData: dataset('task-eval') }));
    expect(both.ok).toBe(false);
    expect(both.errors).toEqual([{ field: 'hyper.evalSplit', message: expect.stringMatching(/^Eval split cannot be combined with the evaluation file \(Data page\): the eval rows come from the evaluation file/) }]);
    const missing = join(tempDir('no-eval'), 'valid.jsonl');
    const gone = await ok<RunCheck>('checkRun', settings({ steps: 2 }, { evalData: missing }));
    expect(gone.errors).toEqual([{ field: 'evalData', message: `${missing}: the evaluation file does not exist` }]);
    // null is "none", as absent
    const none = await ok<RunCheck>('checkRun', settings({ steps: 2 }, { evalData: null }));
    expect(none.errors).toEqual([]);
    expect(none.config!.evalData).toBeNull();
  });
});

describe('startRun with an evaluation file', () => {
  it("evaluates on the file's rows; the started event and run.json say how the file was read", async () => {
    const evalFile = dataset('task-eval');
    const started = await ok<StartedRun>('startRun', settings({ steps: 2, evalEvery: 1 }, { evalData: evalFile }));
    const end = await runEnd(studio.service, events, started.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    const seen = runEventsOf(events, started.runId);
    // the log lines of reading the data come first; they name the eval file and its rows
    expect(seen).toContainEqual({ type: 'log', level: 'info', message: `note: evaluating on ${lines(evalFile)} rows of ${evalFile}` }); // the app's words: no flag
    const first = seen.find((e) => e.type === 'started') as Extract<typeof seen[number], { type: 'started' }>;
    expect(first.evalExamples).toBe(lines(evalFile));
    expect(first.evalData).toMatchObject({ file: evalFile, rows: { total: lines(evalFile), used: lines(evalFile), skipped: 0 } });
    expect(first.data.file).toBe(dataset('task-train'));
    expect(seen.filter((e) => e.type === 'eval').map((e) => (e as { step: number }).step)).toEqual([1, 2]);
    const record = JSON.parse(readFileSync(join(started.runDir, 'run.json'), 'utf8'));
    expect(record.config.evalData).toBe(evalFile);
    expect(record.resolved.eval_data.file).toBe(evalFile);
  });
});

describe('a dataset folder through the service', () => {
  it('inspectData reads a split folder as it is meant: its train split, or with role eval its validation split; checkRun takes folders', async () => {
    const root = tempDir('service-split-folder');
    mkdirSync(join(root, 'data'));
    copyFileSync(dataset('task-train'), join(root, 'data', 'train-00000-of-00001.jsonl'));
    copyFileSync(dataset('task-eval'), join(root, 'data', 'validation-00000-of-00001.jsonl'));
    const read = { model: studio.demo.model, data: root };
    const train = await ok<DatasetReport>('inspectData', read);
    expect(train.split).toBe('train');
    expect(train.rows.total).toBe(lines(dataset('task-train')));
    const held = await ok<DatasetReport>('inspectData', { ...read, role: 'eval' });
    expect(held.split).toBe('validation');
    expect(held.rows.total).toBe(lines(dataset('task-eval')));
    const bad = await studio.service.call('inspectData', { ...read, role: 'test' });
    expect(bad.ok ? null : bad.error).toMatchObject({ code: 'invalid', field: 'role' });
    const c = await ok<RunCheck>('checkRun', settings({ steps: 1 }, { data: root, evalData: root }));
    expect(c.errors).toEqual([]);
  });
});
