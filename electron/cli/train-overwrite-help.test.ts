// train --overwrite deletes the old finished run when the new run starts (not
// when it finishes, as export/merge --overwrite do): the help must say so.
import { describe, expect, it } from 'vitest';
import { cli } from '../testing/e2e-fixtures.js';

describe('train --help', () => {
  it('says plainly that --overwrite deletes the finished run as soon as the new run starts', async () => {
    const r = await cli(['train', '--help']);
    expect(r.code).toBe(0);
    const text = (r.stdout + r.stderr).replace(/\s+/g, ' ');
    expect(text).toContain('--overwrite');
    expect(text).toContain('delete the finished run in --out as soon as the new run starts (its adapter, metrics, checkpoints and run.json are gone even if the new run then fails or is stopped)');
  });
});

describe('train --resume of a folder', () => {
  it('that does not exist says so (not "has no run.json")', async () => {
    const r = await cli(['train', '--resume', '/tmp/peft-studio-no-such-run-folder-7f3a']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('/tmp/peft-studio-no-such-run-folder-7f3a: no such folder (give the --out of a run; peft-studio runs lists them)');
  });

  it('the help names --model, --data and --eval-data among what --resume may change', async () => {
    const text = (await cli(['train', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(text).toContain('and --model / --data / --eval-data when the model folder, the data file or the evaluation file moved (checked to be the same files the run started with)');
  });
});
