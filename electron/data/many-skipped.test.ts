// A dataset with hundreds of thousands of unusable rows loads, listing them
// all: its problems were added with one spread call, which overflowed the
// call stack past ~120,000 rows (a 600 MB file whose prompts all pass
// --seq-len failed with "Maximum call stack size exceeded").
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelTokenizer } from '../models/tokenizer.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { loadDataset } from './load-dataset.js';

describe('a dataset of many unusable rows', () => {
  it('loads its usable row and lists every skipped one', async () => {
    const file = join(tempDir('many-skipped'), 'rows.jsonl');
    const skipped = 300_000;
    const masked = JSON.stringify({ input_ids: [5, 6, 7], labels: [-100, -100, -100] }) + '\n';
    writeFileSync(file, JSON.stringify({ input_ids: [5, 6, 7], labels: [5, 6, 7] }) + '\n' + masked.repeat(skipped));
    const tokenizer = await ModelTokenizer.load(join('resources', 'demo', 'model'));
    const { examples, report } = await loadDataset(file, tokenizer, { format: 'auto', seqLen: 64, completionOnly: true, pack: false, vocabSize: 512 });
    expect(examples).toHaveLength(1);
    expect(report.rows).toEqual({ total: skipped + 1, used: 1, skipped });
    expect(report.skipped[skipped - 1].line).toBe(skipped + 1);
  }, 120_000);
});
