// A resumed run whose data file or model folder moved: --data / --model with
// --resume point it at the new place when the files are provably the same
// (the data's sha256, the model's fingerprint), and say what to do otherwise.
import { cpSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { openModelFolder } from '../models/folder.js';
import { comparableFingerprint, modelFingerprint } from './model-fingerprint.js';
import { resumeSourcesProblem } from './resume-sources.js';
import { checkAgainstModel } from './run.js';
import { resumedConfig, trainConfigFromSettings } from './settings.js';

describe('modelFingerprint', () => {
  it('is the same for a copy at another path, and changes with config.json, a tensor dtype or the tokenizer', async () => {
    const a = await tinyModel({ seed: 71 });
    const copy = join(tempDir('fp'), 'copy');
    cpSync(a.dir, copy, { recursive: true });
    const fp = modelFingerprint(await openModelFolder(a.dir));
    expect(fp).toMatch(/^v2:sha256:[0-9a-f]{64}$/);
    expect(modelFingerprint(await openModelFolder(copy))).toBe(fp);
    // same weights, another rope_theta: another model as far as training goes
    const config = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8'));
    writeFileSync(join(copy, 'config.json'), JSON.stringify({ ...config, rope_theta: 500000 }));
    expect(modelFingerprint(await openModelFolder(copy))).not.toBe(fp);
    writeFileSync(join(copy, 'config.json'), JSON.stringify(config));
    expect(modelFingerprint(await openModelFolder(copy))).toBe(fp);
    // the same numbers stored as BF16
    const bf16 = await tinyModel({ seed: 71, dtype: 'BF16' });
    expect(modelFingerprint(await openModelFolder(bf16.dir))).not.toBe(fp);
    // another tokenizer (the data is tokenized again on resume)
    const tok = JSON.parse(readFileSync(join(copy, 'tokenizer.json'), 'utf8'));
    writeFileSync(join(copy, 'tokenizer.json'), JSON.stringify({ ...tok, truncation: { max_length: 3 } }));
    expect(modelFingerprint(await openModelFolder(copy))).not.toBe(fp);
    writeFileSync(join(copy, 'tokenizer.json'), JSON.stringify(tok));
    // a chat template in chat_template.jinja (the one transformers and training use when it is there)
    const withTemplate = modelFingerprint(await openModelFolder(copy));
    writeFileSync(join(copy, 'chat_template.jinja'), '{{ messages[0].content }}');
    expect(modelFingerprint(await openModelFolder(copy))).not.toBe(withTemplate);
  });
});

describe('a fingerprint of another format (an older version)', () => {
  it('is not compared (a resume at the same path goes on) and cannot vouch for a moved model', async () => {
    const a = await tinyModel({ seed: 72 });
    const folder = await openModelFolder(a.dir);
    const old = 'sha256:' + '0'.repeat(64);
    expect(comparableFingerprint(old)).toBe(false);
    expect(comparableFingerprint('v1:sha256:' + '0'.repeat(64))).toBe(false);
    expect(comparableFingerprint(modelFingerprint(folder))).toBe(true);
    const config = { ...trainConfigFromSettings({ model: a.dir, data: '/d.jsonl', out: '/r', threads: 1 }), modelFingerprint: old };
    expect(() => checkAgainstModel(config, folder, config.lora)).not.toThrow();
    expect(() => resumedConfig(config, '/r', { model: '/elsewhere' })).toThrow(/records no fingerprint of the model it started with/);
  });
});

describe('resume settings for a moved model or data', () => {
  const stored = trainConfigFromSettings({ model: '/old/model', data: '/old/d.jsonl', out: '/old/run', threads: 1 });

  it('--data: the new path is taken (the run checks its sha256 against run.json before training)', () => {
    expect(resumedConfig(stored, '/r', { data: '/new/d.jsonl' })).toEqual({ ...stored, out: '/r', data: '/new/d.jsonl' });
  });

  it('--model: only with a recorded fingerprint to check it against; the run then checks the folder', async () => {
    expect(() => resumedConfig(stored, '/r', { model: '/new/model' }, (f) => `--${f}`)).toThrow(
      "--model /new/model: this run's run.json records no fingerprint of the model it started with, so another folder cannot be checked to hold the same model. " +
      'Put the model back at /old/model and resume without --model');
    // the same path is no change
    expect(resumedConfig(stored, '/r', { model: '/old/model' }).model).toBe('/old/model');

    const model = await tinyModel({ seed: 72 });
    const other = await tinyModel({ seed: 72, layers: 3 });
    const folder = await openModelFolder(model.dir);
    const recorded = { ...stored, modelFingerprint: modelFingerprint(folder) };
    const moved = resumedConfig(recorded, '/r', { model: model.dir });
    expect(moved.model).toBe(model.dir);
    expect(() => checkAgainstModel(moved, folder, moved.lora)).not.toThrow();
    const wrong = resumedConfig(recorded, '/r', { model: other.dir });
    const otherFolder = await openModelFolder(other.dir);
    expect(() => checkAgainstModel(wrong, otherFolder, wrong.lora)).toThrow(
      `${other.dir}: is not the model this run started with (its config.json, its tensors' names, dtypes or shapes, or its tokenizer files differ from what run.json recorded). ` +
      'Resume with --model set to the folder of the model the run started with');
  });

  it('says where to put a moved model or data file back, and how to point the run at the new place', async () => {
    const model = await tinyModel({ seed: 73 });
    const data = writeJsonl(join(tempDir('src'), 'd.jsonl'), cycleRows(2, 8));
    expect(resumeSourcesProblem({ model: model.dir, data })).toBeNull();
    expect(resumeSourcesProblem({ model: '/gone/model', data })).toBe(
      "/gone/model: the run's model folder is not there (no such folder). Put it back at /gone/model " +
      '(this run recorded no fingerprint of its model, so it cannot be pointed at another folder)');
    expect(resumeSourcesProblem({ model: '/gone/model', data: '/gone/d.jsonl', modelFingerprint: 'sha256:x' })).toBe(
      "/gone/model: the run's model folder is not there (no such folder). Put it back at /gone/model, or resume with --model <its new folder> " +
      '(checked: the same config.json, tensor names, dtypes and shapes, and tokenizer as when the run started); ' +
      "/gone/d.jsonl: the run's data file is not there (no such file). Put it back at /gone/d.jsonl, or resume with --data <its new path> (checked: the same sha256 as when the run started)");
  });
});

describe('train --resume --data', () => {
  it('continues with the data file at its new path; another file is refused by its sha256', async () => {
    const model = await tinyModel({ seed: 74 });
    const dir = tempDir('relocate');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 8));
    const out = join(dir, 'run');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    let crashed;
    try {
      crashed = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '4', '--save-every', '2', '--threads', '1']);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    expect(crashed.code).not.toBe(0);
    const moved = join(dir, 'moved.jsonl');
    renameSync(data, moved);
    const other = writeJsonl(join(dir, 'other.jsonl'), cycleRows(5, 8));
    const refused = await cli(['train', '--resume', out, '--data', other]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`--data ${other}: is not the data file this run started with (`);
    const resumed = await cli(['train', '--resume', out, '--data', moved]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.status).toBe('finished');
    expect(record.config.data).toBe(moved);
    expect(record.resumes.map((r: { from_step: number }) => r.from_step)).toEqual([2]);
  });
});
