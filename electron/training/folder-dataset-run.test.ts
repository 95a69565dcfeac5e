// A run on a dataset folder as the Hugging Face hub serves it (and as its
// cache keeps it): `train --data DIR --eval-data DIR` trains on the train
// split's shards and evaluates on the validation split, the same rows as the
// files given one by one would give (the eval loss `eval` computes on the
// validation file with the trained adapter); run.json records the folder and
// its fingerprint, and a resume refuses a folder whose shards changed.
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetSha256 } from '../data/dataset-fingerprint.js';
import { cli, readJsonLines, tempDir } from '../testing/e2e-fixtures.js';

const DEMO = resolve('resources/demo');
const MODEL = join(DEMO, 'model');
const THREADS = ['--threads', '2'];
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n');

/** The demo's task rows as a hub dataset: data/train-0000k-of-00002.jsonl and data/validation-00000-of-00001.jsonl, a card beside. */
function hubDataset(root: string): { train: string[]; validation: string } {
  mkdirSync(join(root, 'data'), { recursive: true });
  writeFileSync(join(root, 'README.md'), '# demo task\n');
  const rows = lines(join(DEMO, 'task-train.jsonl'));
  const half = Math.ceil(rows.length / 2);
  const train = [0, 1].map((k) => join(root, 'data', `train-0000${k}-of-00002.jsonl`));
  writeFileSync(train[0], rows.slice(0, half).join('\n') + '\n');
  writeFileSync(train[1], rows.slice(half).join('\n') + '\n');
  const validation = join(root, 'data', 'validation-00000-of-00001.jsonl');
  copyFileSync(join(DEMO, 'task-eval.jsonl'), validation);
  return { train, validation };
}

describe('train on a dataset folder', () => {
  it('trains on its train split, evaluates on its validation split, records the folder; a changed shard stops a resume', async () => {
    const dir = tempDir('folder-run');
    const folder = join(dir, 'dataset');
    const { train, validation } = hubDataset(folder);
    const out = join(dir, 'run');
    const r = await cli(['train', '--model', MODEL, '--data', folder, '--eval-data', folder, '--out', out, '--steps', '4', '--batch-size', '4',
      '--save-every', '2', '--lr', '5e-3', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: ${folder}: read its train split, 2 files (data/train-00000-of-00002.jsonl ... data/train-00001-of-00002.jsonl)`);
    // the folder is the evaluation data too: no advice to make it so
    expect(r.stderr).toContain(`note: ${folder}: its validation split (1 file) is not trained on\n`);
    const summary = JSON.parse(r.stdout);
    expect(summary.train_examples).toBe(lines(train[0]).length + lines(train[1]).length);
    expect(summary.eval_examples).toBe(lines(validation).length);

    // the final eval loss is the one `eval` computes on the validation file alone
    const evals = readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'eval_loss' in m);
    const scored = await cli(['eval', '--model', MODEL, '--adapter', out, '--data', validation, '--batch-size', '4', ...THREADS]);
    expect(scored.code, scored.stderr).toBe(0);
    const reference = (JSON.parse(scored.stdout) as { loss: number }).loss;
    expect(Math.abs(evals[evals.length - 1].eval_loss - reference)).toBeLessThan(1e-5 * reference);
    // `eval --data FOLDER` scores its validation split: the same number
    const viaFolder = await cli(['eval', '--model', MODEL, '--adapter', out, '--data', folder, '--batch-size', '4', ...THREADS]);
    expect(viaFolder.code, viaFolder.stderr).toBe(0);
    expect((JSON.parse(viaFolder.stdout) as { loss: number }).loss).toBe(reference);
    // a run folder inside the dataset folder is refused (its files would sit among the data)
    const inside = await cli(['train', '--model', MODEL, '--data', folder, '--out', join(folder, 'runs', 'r'), '--steps', '1', ...THREADS]);
    expect(inside.code).not.toBe(0);
    expect(inside.stderr).toContain(`--out ${join(folder, 'runs', 'r')}: is inside the dataset folder --data ${folder}`);

    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config.data).toBe(folder);
    expect(record.config.evalData).toBe(folder);
    expect(record.data_sha256).toBe(await datasetSha256(folder));
    expect(record.eval_data_sha256).toBe(await datasetSha256(folder, 'eval'));
    expect(record.resolved.data).toMatchObject({ file: folder, files: 2, split: 'train' });

    // a run stopped at step 3 resumes on the same folder, not on one whose shard changed
    const crashed = join(dir, 'crashed');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    try {
      const r1 = await cli(['train', '--model', MODEL, '--data', folder, '--out', crashed, '--steps', '4', '--batch-size', '4', '--save-every', '2', ...THREADS]);
      expect(r1.code).not.toBe(0);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    writeFileSync(train[1], lines(train[1]).slice(1).join('\n') + '\n');
    const refused = await cli(['train', '--resume', crashed, ...THREADS]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${folder}: the data file changed since the run started (its sha256 differs)`);
    writeFileSync(train[1], lines(join(DEMO, 'task-train.jsonl')).slice(Math.ceil(lines(join(DEMO, 'task-train.jsonl')).length / 2)).join('\n') + '\n');
    const resumed = await cli(['train', '--resume', crashed, ...THREADS]);
    expect(resumed.code, resumed.stderr).toBe(0);
  });

  it('a run on a pattern of files resumes on the same files (closing read: the pattern was "not there")', async () => {
    const dir = tempDir('pattern-run');
    const { train } = hubDataset(join(dir, 'dataset'));
    const pattern = join(dir, 'dataset', 'data', 'train-*');
    const out = join(dir, 'run');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    try {
      expect((await cli(['train', '--model', MODEL, '--data', pattern, '--out', out, '--steps', '4', '--batch-size', '4', '--save-every', '2', ...THREADS])).code).not.toBe(0);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config.data).toBe(pattern);
    expect(record.resolved.data).toMatchObject({ files: 2 });
    const resumed = await cli(['train', '--resume', out, ...THREADS]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(train).toHaveLength(2);
  });

  it('a dataset in the Hugging Face cache, named org/name, is read from the snapshot refs/main names', async () => {
    const cache = tempDir('hub-cache');
    const repo = join(cache, 'datasets--acme--demo-task');
    const revision = 'a'.repeat(40);
    mkdirSync(join(repo, 'refs'), { recursive: true });
    mkdirSync(join(repo, 'blobs'));
    writeFileSync(join(repo, 'refs', 'main'), revision);
    // the snapshot's files are links to blobs, as huggingface_hub writes them
    const staged = join(tempDir('hub-stage'), 'ds');
    const { train } = hubDataset(staged);
    mkdirSync(join(repo, 'snapshots', revision, 'data'), { recursive: true });
    train.forEach((file, k) => {
      const blob = join(repo, 'blobs', `blob${k}`);
      copyFileSync(file, blob);
      symlinkSync(`../../../blobs/blob${k}`, join(repo, 'snapshots', revision, 'data', `train-0000${k}-of-00002.jsonl`));
    });
    // the CLI runs in this process: it reads the cache's place from the environment
    const before = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
    const snapshot = join(repo, 'snapshots', revision);
    const inspected = await cli(['data', 'inspect', 'acme/demo-task', '--model', MODEL]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(inspected.stderr).toContain(`note: using the dataset acme/demo-task at revision ${revision.slice(0, 12)} (refs/main): ${snapshot}`);
    const report = JSON.parse(inspected.stdout);
    expect(report.rows.total).toBe(lines(train[0]).length + lines(train[1]).length);
    expect(report.files.map((f: { path: string }) => f.path)).toEqual([0, 1].map((k) => join(snapshot, 'data', `train-0000${k}-of-00002.jsonl`)));
    // the repo folder itself, as the app's file browser would give it
    const viaFolder = await cli(['data', 'inspect', repo, '--model', MODEL]);
    expect(viaFolder.code, viaFolder.stderr).toBe(0);
    expect(JSON.parse(viaFolder.stdout).rows).toEqual(report.rows);
    // not in the cache: said where it looked, and that nothing is downloaded
    const missing = await cli(['data', 'inspect', 'acme/other', '--model', MODEL]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`no dataset acme/other in the Hugging Face cache (looked for ${join(cache, 'datasets--acme--other')}`);
    expect(missing.stderr).toContain('Nothing is downloaded');
    expect(missing.stderr).toContain('FILE acme/other: no such file or folder');
    // a mistyped file path is not taken for a repo id
    const typo = await cli(['data', 'inspect', join('electron', 'no-such.jsonl'), '--model', MODEL]);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).not.toContain('Hugging Face cache');

    // a run on the repo folder records the snapshot it read; once refs/main names a newer revision
    // (other rows), a resume still reads the recorded one, so it goes on instead of finding the data changed
    const out = join(tempDir('hub-run'), 'run');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    let r;
    try {
      r = await cli(['train', '--model', MODEL, '--data', repo, '--out', out, '--steps', '4', '--batch-size', '4', '--save-every', '2', '--lr', '5e-3', ...THREADS]);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`note: using the dataset acme/demo-task at revision ${revision.slice(0, 12)} (refs/main): ${snapshot}`);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config.data).toBe(snapshot);
    const newer = 'b'.repeat(40);
    mkdirSync(join(repo, 'snapshots', newer, 'data'), { recursive: true });
    writeFileSync(join(repo, 'snapshots', newer, 'data', 'train-00000-of-00001.jsonl'), lines(train[0]).slice(0, 5).join('\n') + '\n');
    writeFileSync(join(repo, 'refs', 'main'), newer);
    const resumed = await cli(['train', '--resume', out, ...THREADS]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).status).toBe('finished');
    } finally {
      if (before === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = before;
    }
  });
});
