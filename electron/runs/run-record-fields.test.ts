// A run.json whose config lost a field (edited by hand, damaged) is refused on
// resume naming the file and the field, not run with "--seq-len undefined = NaN".
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { readRunRecord } from './run-record.js';

describe('a run.json missing a config field', () => {
  it('train --resume names the file and the field', { timeout: 120_000 }, async () => {
    const work = tempDir('record-fields');
    const model = (await tinyModel({ seed: 3 })).dir;
    const data = writeJsonl(join(work, 'd.jsonl'), cycleRows(4, 12));
    const out = join(work, 'run');
    const first = await cli(['train', '--model', model, '--data', data, '--out', out, '--steps', '2', '--save-every', '1', '--threads', '2', '--eval-split', '0']);
    expect(first.code).toBe(0);
    const file = join(out, 'run.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { status: string; config: Record<string, unknown> };
    record.status = 'interrupted';
    delete record.config.seqLen;
    writeFileSync(file, JSON.stringify(record));
    const again = await cli(['train', '--resume', out]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`${file}: config.seqLen is missing (expected a number); every run.json peft-studio writes has it, so the file was edited or damaged.`);
    expect(again.stderr).not.toContain('NaN');

    record.config.seqLen = 'long';
    writeFileSync(file, JSON.stringify(record));
    expect((await cli(['train', '--resume', out])).stderr).toContain(`${file}: config.seqLen is "long" (expected a number)`);
    // listing and comparing runs still read it as it is
    expect((await readRunRecord(out))!.config.seqLen).toBe('long');
  });
});
