// --eval-data: a run evaluates on a separate file, read as --data is. The
// final eval loss a run logs is checked against the `eval` command on the
// same file with the trained adapter (an independent path to the same
// number); the file is recorded in run.json with its sha256, and a resume
// must see the same file (at its old path, or a new one with --eval-data).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { resumedConfig, trainConfigFromSettings } from './settings.js';
import { resumeSourcesProblem } from './resume-sources.js';

const DEMO = resolve('resources/demo');
const THREADS = ['--threads', '2'];
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('train --eval-data on the bundled demo model', () => {
  it("logs as its final eval loss the loss `eval` computes on the file with the trained adapter", async () => {
    const model = join(DEMO, 'model');
    const data = join(DEMO, 'task-train.jsonl');
    const evalFile = join(DEMO, 'task-eval.jsonl');
    const out = join(tempDir('eval-data'), 'run');
    const r = await cli(['train', '--model', model, '--data', data, '--eval-data', evalFile, '--out', out, '--steps', '6', '--batch-size', '4',
      '--eval-every', '3', '--lr', '5e-3', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const rows = readFileSync(evalFile, 'utf8').trim().split('\n').length;
    expect(r.stderr).toContain(`note: evaluating on ${rows} rows of ${evalFile} (--eval-data)`);

    const evals = readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'eval_loss' in m);
    expect(evals.map((m) => m.step)).toEqual([3, 6]);
    const summary = JSON.parse(r.stdout);
    expect(summary.eval_examples).toBe(rows);
    expect(summary.train_examples).toBe(readFileSync(data, 'utf8').trim().split('\n').length);
    expect(summary.final_eval_loss).toBe(evals[1].eval_loss);

    const scored = await cli(['eval', '--model', model, '--adapter', out, '--data', evalFile, '--batch-size', '4', ...THREADS]);
    expect(scored.code, scored.stderr).toBe(0);
    const reference = JSON.parse(scored.stdout) as { loss: number };
    expect(Math.abs(evals[1].eval_loss - reference.loss)).toBeLessThan(1e-5 * reference.loss);
    // and the eval loss moved with training (the first evaluation is of another adapter)
    expect(Math.abs(evals[0].eval_loss - reference.loss)).toBeGreaterThan(1e-4);

    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config.evalData).toBe(evalFile);
    expect(record.config.evalSplit).toBe(0);
    expect(record.eval_data_sha256).toBe(sha256(evalFile));
    expect(record.data_sha256).toBe(sha256(data));
    expect(record.resolved.eval_examples).toBe(rows);
    expect(record.resolved.eval_data).toMatchObject({ file: evalFile, format: 'completion', rows: { total: rows, used: rows, skipped: 0 } });
    expect(record.resolved.data).toMatchObject({ file: data });
  });
});

describe('train --eval-data: refused settings and files', () => {
  it('with --eval-split above 0 it is refused before the model is read', async () => {
    const r = await cli(['train', '--model', '/no/such/model', '--data', '/no/d.jsonl', '--eval-data', '/no/e.jsonl', '--eval-split', '0.1', '--out', '/tmp/x']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--eval-split cannot be combined with --eval-data: the eval rows come from the evaluation file, and all of --data is trained on');
    expect(r.stderr).not.toContain('/no/such/model');
    // --eval-split 0 says the same as leaving it out
    expect(trainConfigFromSettings({ model: '/m', data: '/d.jsonl', evalData: 'e.jsonl', evalSplit: 0, out: '/r' }).evalData).toBe(resolve('e.jsonl'));
  });

  it('a missing file, and a file with no usable row, are errors naming the file; nothing is written', async () => {
    const model = await tinyModel({ seed: 81 });
    const dir = tempDir('eval-data-bad');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(4, 8));
    const missing = join(dir, 'gone.jsonl');
    const gone = await cli(['train', '--model', model.dir, '--data', data, '--eval-data', missing, '--out', join(dir, 'run1'), '--steps', '1', ...THREADS]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('the evaluation file (--eval-data) cannot be used: ');
    expect(gone.stderr).toContain(missing);

    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"input_ids": "nope"}\n{"nothing": 1}\n');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--eval-data', bad, '--out', join(dir, 'run2'), '--steps', '1', ...THREADS]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`the evaluation file (--eval-data) cannot be used: ${bad}: none of its 2 rows can be used`);

    // rows with no token to score (one-token rows) are skipped by the reader: none left is the same error
    const short = writeJsonl(join(dir, 'short.jsonl'), [{ input_ids: [40] }, { input_ids: [41] }]);
    const s = await cli(['train', '--model', model.dir, '--data', data, '--eval-data', short, '--out', join(dir, 'run3'), '--steps', '1', ...THREADS]);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toContain(`the evaluation file (--eval-data) cannot be used: ${short}: none of its 2 rows can be used`);
    expect(s.stderr).toContain(`${short}:1: no token of this row is trained`);
    for (const run of ['run1', 'run2', 'run3']) expect(existsSync(join(dir, run))).toBe(false);
  });

  it("names the eval file's skipped rows with that file", async () => {
    const model = await tinyModel({ seed: 82 });
    const dir = tempDir('eval-data-skip');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(4, 8));
    const evalFile = join(dir, 'e.jsonl');
    writeFileSync(evalFile, [...cycleRows(3, 8).map((x) => JSON.stringify(x)), '{"input_ids": "nope"}'].join('\n') + '\n');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--eval-data', evalFile, '--out', join(dir, 'run'), '--steps', '1', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: evaluating on 3 rows of ${evalFile} (--eval-data)`);
    expect(r.stderr).toContain(`note: ${evalFile}: 1 of 4 rows skipped; first: ${evalFile}:4`);
    const record = JSON.parse(readFileSync(join(dir, 'run', 'run.json'), 'utf8'));
    expect(record.resolved.eval_data.rows).toEqual({ total: 4, used: 3, skipped: 1 });
    expect(record.resolved.eval_data.skipped[0].source).toBe(`${evalFile}:4`);
  });
});

describe('train --resume with an evaluation file', () => {
  it('settings: the stored file is kept, a new path is taken, and a run without one cannot be given one', () => {
    const stored = trainConfigFromSettings({ model: '/m', data: '/d.jsonl', evalData: '/old/e.jsonl', out: '/r', threads: 1 });
    expect(resumedConfig(stored, '/r').evalData).toBe('/old/e.jsonl');
    expect(resumedConfig(stored, '/r', { evalData: '/new/e.jsonl' }).evalData).toBe('/new/e.jsonl');
    const plain = trainConfigFromSettings({ model: '/m', data: '/d.jsonl', out: '/r', threads: 1 });
    expect(plain.evalData).toBeNull();
    expect(() => resumedConfig(plain, '/r', { evalData: '/e.jsonl' }, (f) => `--${f}`)).toThrow(
      '--evalData /e.jsonl: this run started without an evaluation file, so it cannot be given one on resume');
    // a run.json of an older version has no evalData: no evaluation file, as before
    const { evalData: _none, ...old } = plain;
    expect(resumedConfig(old as typeof plain, '/r').evalData).toBeNull();
    expect(resumeSourcesProblem({ model: '/', data: '/', evalData: '/gone/e.jsonl' })).toBe(
      "/gone/e.jsonl: the run's evaluation file is not there (no such file). Put it back at /gone/e.jsonl, or resume with --eval-data <its new path> " +
      '(checked: the same sha256 as when the run started)');
  });

  it('resumes with the same file, after a move only with --eval-data at the new path, and refuses another file by its sha256', async () => {
    const model = await tinyModel({ seed: 83 });
    const dir = tempDir('eval-data-resume');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 8));
    const evalFile = writeJsonl(join(dir, 'e.jsonl'), cycleRows(3, 6, [44, 45, 40]));
    const crashedRun = async (out: string) => {
      process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
      try {
        return await cli(['train', '--model', model.dir, '--data', data, '--eval-data', evalFile, '--out', out, '--steps', '4', '--save-every', '2', '--eval-every', '2', '--threads', '1']);
      } finally {
        delete process.env.PEFT_STUDIO_CRASH_AT;
      }
    };

    // the same file where it was
    const same = join(dir, 'same');
    expect((await crashedRun(same)).code).not.toBe(0);
    const again = await cli(['train', '--resume', same]);
    expect(again.code, again.stderr).toBe(0);
    const sameRecord = JSON.parse(readFileSync(join(same, 'run.json'), 'utf8'));
    expect(sameRecord).toMatchObject({ status: 'finished', eval_data_sha256: sha256(evalFile), config: { evalData: evalFile } });
    expect(readJsonLines(join(same, 'metrics.jsonl')).filter((m) => 'eval_loss' in m).map((m) => m.step)).toEqual([2, 4]);

    // moved: without --eval-data it says where to put it back or how to point at it
    const out = join(dir, 'moved');
    expect((await crashedRun(out)).code).not.toBe(0);
    const moved = join(dir, 'moved-e.jsonl');
    renameSync(evalFile, moved);
    const lost = await cli(['train', '--resume', out]);
    expect(lost.code).not.toBe(0);
    expect(lost.stderr).toContain(`${evalFile}: the run's evaluation file is not there (no such file). Put it back at ${evalFile}, or resume with --eval-data <its new path>`);
    const other = writeJsonl(join(dir, 'other-e.jsonl'), cycleRows(3, 6, [41, 42, 43]));
    const refused = await cli(['train', '--resume', out, '--eval-data', other]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`--eval-data ${other}: is not the evaluation file this run started with (${evalFile}; the sha256 differs)`);
    const resumed = await cli(['train', '--resume', out, '--eval-data', moved]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.status).toBe('finished');
    expect(record.config.evalData).toBe(moved);
    expect(record.eval_data_sha256).toBe(sha256(moved));
    expect(record.resumes.map((x: { from_step: number }) => x.from_step)).toEqual([2]);
    // the eval losses of the moved run are those of the run that never moved (same files, same seed)
    const losses = (run: string) => readJsonLines(join(run, 'metrics.jsonl')).filter((m) => 'eval_loss' in m).map((m) => m.eval_loss);
    expect(losses(out)).toEqual(losses(same));

    // changed in place: refused by its sha256
    const changed = join(dir, 'changed');
    renameSync(moved, evalFile);
    expect((await crashedRun(changed)).code).not.toBe(0);
    writeJsonl(evalFile, cycleRows(3, 6, [41, 42, 43]));
    const edited = await cli(['train', '--resume', changed]);
    expect(edited.code).not.toBe(0);
    expect(edited.stderr).toContain(`${evalFile}: the evaluation file changed since the run started (its sha256 differs)`);
  });
});
