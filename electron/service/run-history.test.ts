// runHistory of a folder that holds no run answers 'invalid' on runDir, so the
// Train page can tell "no run there" (a run that failed before it trained:
// its folder removed) from a lost connection, which is 'failed'.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/e2e-fixtures.js';
import { callRefused } from '../testing/service-calls.js';
import { serviceForTests } from '../testing/service-fixture.js';

const studio = serviceForTests('service-history-home');

describe('runHistory of a folder with no run', () => {
  it('a folder that is gone, and one without run.json: invalid on runDir, naming it', async () => {
    const empty = tempDir('no-run');
    const gone = join(empty, 'removed');
    for (const dir of [gone, empty]) {
      expect(await callRefused(studio.service, 'runHistory', { runDir: dir })).toEqual({
        code: 'invalid', field: 'runDir', message: `${dir}: has no run.json, so it is not a run folder; choose the folder of a run`,
      });
    }
  });
});
