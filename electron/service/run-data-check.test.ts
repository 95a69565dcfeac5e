// checkRun refuses the data the run would refuse, before Start, as `train`
// does: a sequence length that leaves no row a token to learn is an error on
// Sequence length with the shortest length that keeps every row usable (and
// the one that keeps every answer whole); those numbers are held against the
// run's own reader (loadRunData) asked at each length; a length that leaves
// some rows is accepted, as `train` accepts it; data that no length helps is
// refused on the data field with the reader's own error.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunCheck } from '../api/contract.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { tempDir, writeJsonl } from '../testing/e2e-fixtures.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { loadRunData } from '../training/run.js';

const studio = serviceForTests('service-data-check-home');
const { ok } = studio;

/** Rows whose prompts grow: a question of `words` words each. */
function questions(file: string, words: number[]): string {
  return writeJsonl(file, words.map((n, i) => ({ prompt: `Question ${i}: ${Array.from({ length: n }, (_, w) => `word${w}`).join(' ')}?\nAnswer:`, completion: ` answer number ${i}.` })));
}

/** What the run's own reader makes of the data at `seqLen`: its rows and whether it truncated any, or its error. */
async function readAt(check: RunCheck, seqLen: number): Promise<{ rows: number; truncated: boolean } | { error: string }> {
  const folder = await openModelFolder(studio.demo.model);
  try {
    const data = await loadRunData({ ...check.config!, seqLen }, await ModelTokenizer.load(folder.dir), folder);
    return { rows: data.train.length + data.eval.length, truncated: data.notes.some((n) => n.includes('truncated to --seq-len')) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The smallest sequence length from 2 for which `ok` holds of the reader's answer. */
async function smallest(check: RunCheck, ok: (read: Awaited<ReturnType<typeof readAt>>) => boolean): Promise<number> {
  for (let s = 2; s <= 512; s++) if (ok(await readAt(check, s))) return s;
  throw new Error('no sequence length up to 512');
}

const checkAt = (data: string, seqLen: number, extra: Record<string, unknown> = {}) =>
  ok<RunCheck>('checkRun', { model: studio.demo.model, data, method: 'lora', ...extra, hyper: { seqLen, steps: 2, evalSplit: 0, device: 'cpu' } });

describe('checkRun: the data the run would refuse', () => {
  it('a sequence length shorter than every prompt: refused on Sequence length, with the length that keeps every row', async () => {
    const data = questions(join(tempDir('seq-short'), 'q.jsonl'), [2, 6, 12]);
    const long = await checkAt(data, 256);
    expect(long.errors).toEqual([]);
    // the reader's own answers: the first length that reads anything, that reads every row, that truncates none
    const some = await smallest(long, (r) => 'rows' in r);
    const every = await smallest(long, (r) => 'rows' in r && r.rows === 3);
    const whole = await smallest(long, (r) => 'rows' in r && r.rows === 3 && !r.truncated);
    expect(some).toBeLessThan(every);
    expect(every).toBeLessThan(whole);
    const refused = await checkAt(data, some - 1);
    expect(refused.ok).toBe(false);
    expect(refused.memory).toBeNull();
    expect(refused.errors).toEqual([{
      field: 'hyper.seqLen',
      message: `Sequence length ${some - 1} leaves no row of ${data} a token to learn: in each of its 3 usable rows the first ${some - 1} tokens are prompt. ` +
        `Raise it to at least ${every}, where every row keeps part of its answer (${whole} keeps every answer whole).`,
    }]);
    expect(refused.verdict).toBe(`Cannot start: ${refused.errors[0].message}`);
    // the run refuses it too, with the reader's error
    expect(await readAt(long, some - 1)).toEqual({ error: expect.stringMatching(/none of its 3 rows can be used .* hold no trained token/) });
    // a length that leaves one row is what `train` accepts: no error (the rows it drops are the run's notes)
    const accepted = await checkAt(data, some);
    expect(accepted.errors).toEqual([]);
    expect(accepted.memory).not.toBeNull();
  });

  it('the bundled task at 20 tokens: refused before Start, as `peft-studio train --seq-len 20` refuses it', async () => {
    const c = await checkAt(studio.taskTrain(), 20);
    expect(c.ok).toBe(false);
    expect(c.errors.map((e) => e.field)).toEqual(['hyper.seqLen']);
    const long = await checkAt(studio.taskTrain(), 256);
    const every = await smallest(long, (r) => 'rows' in r && r.rows === 111);
    expect(c.errors[0].message).toContain(`Raise it to at least ${every}, where every row keeps part of its answer`);
    expect(await checkAt(studio.taskTrain(), every)).toMatchObject({ ok: true, errors: [] });
  });

  it('an evaluation file whose prompts are longer than the training rows\': refused on Sequence length, naming that file', async () => {
    const dir = tempDir('seq-eval');
    const data = questions(join(dir, 'train.jsonl'), [1, 1]);
    const evalData = questions(join(dir, 'eval.jsonl'), [14, 14]);
    const long = await checkAt(data, 256, { evalData });
    expect(long.errors).toEqual([]);
    const evalSome = await smallest(long, (r) => 'rows' in r);
    const c = await checkAt(data, evalSome - 1, { evalData });
    expect(c.errors).toHaveLength(1);
    expect(c.errors[0].field).toBe('hyper.seqLen');
    expect(c.errors[0].message).toMatch(new RegExp(`^Sequence length ${evalSome - 1} leaves no row of ${evalData.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} a token to learn`));
  });

  it('data that no sequence length helps: refused on the data field with the reader\'s own error', async () => {
    const data = writeJsonl(join(tempDir('seq-bad'), 'bad.jsonl'), [{ prompt: 'a', completion: 1 }, { prompt: 'b', completion: 2 }]);
    const c = await checkAt(data, 64, { dataFormat: 'completion' });
    const folder = await openModelFolder(studio.demo.model);
    const config = { ...(await checkAt(studio.taskTrain(), 64, { dataFormat: 'completion' })).config!, data };
    const error = await loadRunData(config, await ModelTokenizer.load(folder.dir), folder).then(() => null, (e: Error) => e.message);
    expect(error).toMatch(/^.*bad\.jsonl: none of its 2 rows can be used/);
    expect(c.errors).toEqual([{ field: 'data', message: error }]);
    expect(c.ok).toBe(false);
    // as the evaluation file: on its field, the file named as the Data page names it (no flag)
    const asEval = await checkAt(studio.taskTrain(), 64, { dataFormat: 'completion', evalData: data });
    expect(asEval.errors).toEqual([{ field: 'evalData', message: `the evaluation file cannot be used: ${error}` }]);
  });
});
