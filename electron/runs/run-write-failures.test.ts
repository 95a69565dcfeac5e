// Writes a run makes between its checkpoints fail as the checkpoint's and the
// final save's do (kept-state.test.ts): a metrics.jsonl row, --keep-best's
// best/, run.json. The trained state is kept as a checkpoint, the message
// names the file and the `train --resume` command, and that command ends with
// the adapter (and best/) an uninterrupted run writes, bit for bit. The
// failures are real ones of the file system: a folder where metrics.jsonl or
// run.json goes (EISDIR), a file where best/ or checkpoints/ goes.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adapterOf, messageOf, runFixture, runKeyOf, runOnce } from '../testing/run-fixture.js';
import { keptStateDir } from './kept-state.js';
import { indexFile, listRuns } from './run-index.js';

const fx = runFixture('write-failures', { seed: 7, rows: 10, base: ['--steps', '3', '--batch-size', '2', '--threads', '2', '--lr', '1e-2', '--seed', '3'] });
const configFor = fx.configFor;
const NO_EVAL = ['--eval-split', '0'];
const KEEP_BEST = ['--eval-split', '0.2', '--eval-every', '1', '--keep-best'];


const stepsIn = (file: string): number[] => readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number; loss?: number }))
  .filter((r) => r.loss !== undefined).map((r) => r.step);

describe('a metrics.jsonl row that cannot be written', () => {
  it('stops the run with that step kept as a checkpoint; --resume continues from it to the same adapter', async () => {
    const ref = join(fx.work(), 'metrics-reference');
    expect((await runOnce(configFor(ref, NO_EVAL), false)).end.type).toBe('finished');

    const out = join(fx.work(), 'metrics-fails');
    const metrics = join(out, 'metrics.jsonl');
    // after step 1's row: a folder where the file is, so appending step 2's row fails
    const { end, steps } = await runOnce(configFor(out, NO_EVAL), false, (e) => {
      if (e.type === 'step' && e.step === 1) {
        rmSync(metrics);
        mkdirSync(join(metrics, 'in-the-way'), { recursive: true });
      }
    });
    expect(steps).toEqual([1, 2]); // the loop stops before the step after the failed row
    const kept = join(out, 'checkpoints', 'step-2');
    expect(end).toMatchObject({ type: 'failed', resumable: true, step: 2, checkpoint: kept });
    const m = messageOf(end);
    expect(m).toContain(`${metrics}: writing failed (EISDIR). The metrics of step 2 of 3 could not be appended to ${metrics}, so the run stopped.`);
    expect(m).toContain(`The trained weights of step 2 are kept as a checkpoint in ${kept}. Fix the cause above, then run peft-studio train --resume ${out}: it continues from step 2.`);
    expect(existsSync(join(kept, 'COMPLETE'))).toBe(true);

    rmSync(metrics, { recursive: true });
    const again = await runOnce(configFor(out, NO_EVAL), true);
    expect(again.end.type).toBe('finished');
    expect(again.steps).toEqual([3]);
    expect(adapterOf(out).equals(adapterOf(ref))).toBe(true);
    expect(stepsIn(metrics)).toEqual([3]); // the folder took the place of steps 1-2's rows; the resumed run appends its own
  });
});

describe('a best/ that cannot be written (--keep-best)', () => {
  it('keeps the step in the studio home when the run folder takes no checkpoint; --resume writes best/ and ends as an uninterrupted run', async () => {
    const ref = join(fx.work(), 'best-reference');
    const refEnd = await runOnce(configFor(ref, KEEP_BEST), false);
    expect(refEnd.end.type).toBe('finished');

    const out = join(fx.work(), 'best-fails');
    const best = join(out, 'best');
    // from the start: a file where best/ goes (step 1's evaluation is the first best) and where checkpoints/ goes
    const { end, steps } = await runOnce(configFor(out, KEEP_BEST), false, (e) => {
      if (e.type !== 'started') return;
      writeFileSync(best, 'a file where best/ goes');
      writeFileSync(join(out, 'checkpoints'), 'a file where the checkpoints folder goes');
    });
    expect(steps).toEqual([1]);
    const kept = join(keptStateDir(runKeyOf(out)), 'checkpoints', 'step-1');
    expect(end).toMatchObject({ type: 'failed', resumable: true, step: 1, checkpoint: kept });
    const m = messageOf(end);
    expect(m).toContain(`${best}: is a file`);
    expect(m).toContain(`The best adapter (the new lowest eval loss, at step 1 of 3) could not be written to ${best}, so the run stopped.`);
    expect(m).toContain(`The trained weights of step 1 are kept as a checkpoint in ${kept}. Fix the cause above, then run peft-studio train --resume ${out}: it writes ${best} and continues from step 1.`);

    rmSync(best);
    rmSync(join(out, 'checkpoints'));
    const logs: string[] = [];
    const again = await runOnce(configFor(out, KEEP_BEST), true, (e) => { if (e.type === 'log') logs.push(e.message); });
    expect(again.end.type).toBe('finished');
    expect(again.steps).toEqual([2, 3]);
    expect(logs.some((l) => l.includes('no complete checkpoint'))).toBe(false);
    expect(adapterOf(out).equals(adapterOf(ref))).toBe(true);
    // best/ holds what the uninterrupted run's holds: the same step, loss and bytes
    expect(readFileSync(join(best, 'best.json'), 'utf8')).toBe(readFileSync(join(ref, 'best', 'best.json'), 'utf8'));
    expect(adapterOf(best).equals(adapterOf(join(ref, 'best')))).toBe(true);
  });
});

describe('a run.json that cannot be written', () => {
  it('still lets the index hear how the run ended', async () => {
    const out = join(fx.work(), 'record-fails');
    const record = join(out, 'run.json');
    const { end } = await runOnce(configFor(out, NO_EVAL), false, (e) => {
      if (e.type !== 'started') return;
      rmSync(record);
      mkdirSync(join(record, 'in-the-way'), { recursive: true }); // every later run.json write fails (EISDIR)
    });
    expect(end.type).toBe('finished');
    const index = JSON.parse(readFileSync(indexFile(), 'utf8')) as { runs: { dir: string; status: string; steps_done: number }[] };
    expect(index.runs.find((r) => r.dir === resolve(out))).toMatchObject({ status: 'finished', steps_done: 3 });
  });

  it('the list shows the index\'s end over a run.json left at "running" (the end could not be written there)', async () => {
    const out = join(fx.work(), 'record-stale');
    expect((await runOnce(configFor(out, NO_EVAL), false)).end.type).toBe('finished');
    const finished = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as Record<string, unknown>;
    // the run.json of the run's last progress write: running, by a process that is gone, older than the index's entry
    const stale = { ...finished, status: 'running', pid: 2 ** 22 + 1, pid_start: null, updated_at: '2000-01-01T00:00:00.000Z' };
    writeFileSync(join(out, 'run.json'), JSON.stringify(stale));
    const listed = (await listRuns()).find((r) => r.dir === resolve(out));
    expect(listed).toMatchObject({ status: 'finished', steps_done: 3 });
    // a run.json newer than the entry (another session) wins as before
    writeFileSync(join(out, 'run.json'), JSON.stringify({ ...stale, updated_at: '2999-01-01T00:00:00.000Z' }));
    expect((await listRuns()).find((r) => r.dir === resolve(out))?.status).toBe('interrupted');
  });
});
