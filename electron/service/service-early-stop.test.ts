// Keep-best and early stopping through the studio.service, on the bundled demo model:
// the form's fields, checkRun naming them when the run does not evaluate, a
// started run that stops early (its summary, the run list) and the export of
// its best adapter (the reload check scores it: the best step's eval loss is
// what `eval` gives, checked in training/early-stop-run.test.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExportResult, HyperparameterSpec, RunCheck, RunListEntry, StartedRun } from '../api/contract.js';
import { readJsonLines, tempDir } from '../testing/e2e-fixtures.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { runEnd } from '../testing/service-calls.js';


const studio = serviceForTests('service-early-stop-home');
const { ok, events } = studio;
const dataset = (name: string) => studio.demo.datasets.find((d) => d.name === name)!.path;
const settings = (hyper: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  model: studio.demo.model,
  data: dataset('task-train'),
  method: 'lora',
  hyper: { threads: 2, batchSize: 4, ...hyper },
  ...extra,
});

describe('keep-best and early stopping in the run form', () => {
  it('the form has the three fields (patience empty: off)', async () => {
    const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method: 'lora' });
    const byKey = (key: string) => specs.find((s) => s.key === key);
    expect(byKey('keepBest')).toMatchObject({ kind: 'boolean', default: false, group: 'advanced' });
    expect(byKey('earlyStop')).toMatchObject({ kind: 'int', default: null, min: 1 });
    expect(byKey('earlyStopDelta')).toMatchObject({ kind: 'number', default: 0, min: 0 });
    const full = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method: 'full' });
    expect(full.find((s) => s.key === 'keepBest')!.help).toContain('twice the disk');
  });

  it('checkRun names the field when the run does not evaluate during training', async () => {
    const noEval = await ok<RunCheck>('checkRun', settings({ steps: 4, earlyStop: 2, evalEvery: 2 }));
    expect(noEval.ok).toBe(false);
    expect(noEval.errors).toEqual([{ field: 'hyper.earlyStop', message: expect.stringContaining('Early stopping patience stops when the eval loss stops improving, so it needs an eval set') }]);
    const atEnd = await ok<RunCheck>('checkRun', settings({ steps: 4, keepBest: true }, { evalData: dataset('task-eval') }));
    expect(atEnd.errors).toEqual([{ field: 'hyper.keepBest', message: expect.stringContaining('needs Evaluate every above 0') }]);
    const bad = await ok<RunCheck>('checkRun', settings({ steps: 4, earlyStop: 0, evalEvery: 2 }, { evalData: dataset('task-eval') }));
    expect(bad.errors.map((e) => e.field)).toEqual(['hyper.earlyStop']);
    const good = await ok<RunCheck>('checkRun', settings({ steps: 4, keepBest: true, earlyStop: 2, earlyStopDelta: 0.01, evalEvery: 2 }, { evalData: dataset('task-eval') }));
    expect(good.errors).toEqual([]);
    expect(good.config).toMatchObject({ keepBest: true, earlyStop: 2, earlyStopDelta: 0.01 });
  });

  it('a run that stops early finishes with its reason and its best adapter, which exports', async () => {
    const started = await ok<StartedRun>('startRun', settings({ steps: 40, lr: 3e-2, evalEvery: 2, keepBest: true, earlyStop: 3 }, { evalData: dataset('task-eval') }));
    const end = await runEnd(studio.service, events, started.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    const evals = readJsonLines(join(started.runDir, 'metrics.jsonl')).filter((m) => 'eval_loss' in m);
    const best = evals.reduce((a, b) => (b.eval_loss < a.eval_loss ? b : a));
    const last = evals[evals.length - 1];
    const reason = `stopped early at step ${last.step}: the eval loss did not improve for 3 evaluations; best ${best.eval_loss.toFixed(4)} at step ${best.step}`;
    const summary = (end as Extract<typeof end, { type: 'finished' }>).summary;
    expect(summary).toMatchObject({ steps: last.step, stopped_early: reason, best: { dir: join(started.runDir, 'best'), step: best.step, eval_loss: best.eval_loss } });

    const listed = (await ok<RunListEntry[]>('listRuns', {})).find((r) => r.dir === started.runDir);
    expect(listed).toMatchObject({ status: 'finished', stop_reason: reason, best: { step: best.step } });

    const out = join(tempDir('service-best-export'), 'x');
    const exported = await ok<ExportResult>('exportAdapter', { source: join(started.runDir, 'best'), formats: ['peft'], out });
    // the best adapter, with the run's base model and data for the reload check
    expect(exported.source).toMatchObject({ kind: 'adapter', dir: join(started.runDir, 'best'), modelDir: studio.demo.model, runData: dataset('task-train') });
    expect(readFileSync(join(out, 'adapter_model.safetensors'))).toEqual(readFileSync(join(started.runDir, 'best', 'adapter_model.safetensors')));
  });
});
