// train --resume --model: a run whose model folder moved
// continues from the new folder when it is the same model; another model is refused.
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

describe('train --resume --model', () => {
  it('continues with the model at its new path; another model is refused by its fingerprint', async () => {
    const model = await tinyModel({ seed: 75 });
    const other = await tinyModel({ seed: 76, layers: 3 });
    const dir = tempDir('relocate-model');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 8));
    const out = join(dir, 'run');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    try {
      expect((await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '4', '--save-every', '2', '--threads', '1'])).code).not.toBe(0);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    const recorded = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).config.modelFingerprint;
    expect(recorded).toMatch(/^v2:sha256:[0-9a-f]{64}$/);
    const moved = join(dir, 'moved-model');
    renameSync(model.dir, moved);
    const gone = await cli(['train', '--resume', out]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain(`${model.dir}: the run's model folder is not there (no such folder). Put it back at ${model.dir}, or resume with --model <its new folder>`);
    const wrong = await cli(['train', '--resume', out, '--model', other.dir]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain(`${other.dir}: is not the model this run started with`);
    const resumed = await cli(['train', '--resume', out, '--model', moved]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.status).toBe('finished');
    expect(record.config.model).toBe(moved);
    expect(record.config.modelFingerprint).toBe(recorded);
    expect(record.resumes.map((r: { from_step: number }) => r.from_step)).toEqual([2]);
  });
});
