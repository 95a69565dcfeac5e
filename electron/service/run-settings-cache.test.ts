// The app's run request naming a Hugging Face cache dataset folder (as its
// file browser gives it): the run records the snapshot refs/main names now,
// as the CLI does, so a resume after refs/main moved on reads the same rows;
// a cache folder that cannot say its snapshot is the field's error.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/e2e-fixtures.js';
import { PathPolicy } from './paths.js';
import { parseRunSettings } from './run-settings.js';

describe('a cache dataset folder in the run request', () => {
  it('is recorded as its snapshot; a plain folder stays as it is; a repo without its snapshot is invalid, named', () => {
    const cache = tempDir('app-hub-cache');
    const repo = join(cache, 'datasets--acme--rows');
    const revision = 'c'.repeat(40);
    mkdirSync(join(repo, 'snapshots', revision), { recursive: true });
    mkdirSync(join(repo, 'refs'));
    writeFileSync(join(repo, 'refs', 'main'), revision);
    writeFileSync(join(repo, 'snapshots', revision, 'train.jsonl'), '{"text": "a"}\n');
    const plain = tempDir('app-plain-data');
    const request = (data: string, evalData: string | null = null) => ({ model: plain, data, evalData, method: 'lora', hyper: {} });
    const policy = new PathPolicy(null);
    const snapshot = join(repo, 'snapshots', revision);
    expect(parseRunSettings(request(repo, join(repo, 'snapshots')), policy)).toMatchObject({ errors: [], settings: { data: snapshot, evalData: snapshot } });
    expect(parseRunSettings(request(plain), policy).settings.data).toBe(plain);
    writeFileSync(join(repo, 'refs', 'main'), 'd'.repeat(40));
    const broken = parseRunSettings(request(repo), policy);
    expect(broken.errors).toEqual([{ field: 'data', message: expect.stringContaining(`refs/main: names revision ${'d'.repeat(40)}, but`) }]);
  });
});
