// checkRun carries the time estimate: the steps and tokens of the rows the
// run would really have, the seconds from this CPU's measured GEMM speed
// (its evaluations included), and on a GPU no number at all.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunCheck } from '../api/contract.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { tempDir, writeJsonl } from '../testing/e2e-fixtures.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { plannedSteps } from './planned-steps.js';
import { runRows, runTimeCheck } from './run-time.js';

const studio = serviceForTests('service-time-home');
const { ok } = studio;

describe('checkRun: how long', () => {
  it('says the steps, tokens and time on the CPU before the start', async () => {
    const data = studio.taskTrain();
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data, method: 'lora', hyper: { steps: 3, batchSize: 2, device: 'cpu' } });
    expect(c.errors).toEqual([]);
    expect(c.time).not.toBeNull();
    expect(c.time!.steps).toBe(3);
    // 3 steps x 2 rows of the task's short questions: some tokens, at most 6 full rows
    expect(c.time!.tokens).toBeGreaterThan(6);
    expect(c.time!.tokens).toBeLessThanOrEqual(6 * c.config!.seqLen);
    expect(c.time!.seconds).toBeGreaterThan(0);
    expect(c.time!.text).toMatch(/^(about \d+ (h \d+ )?min|under a minute) on this CPU \(measured \d+ GFLOP\/s x 0\.\d\d for LoRA; an estimate, ±30%\)$/);
    // twice the steps: more rows gone through, more time
    const longer = await ok<RunCheck>('checkRun', { model: studio.demo.model, data, method: 'lora', hyper: { steps: 6, batchSize: 2, device: 'cpu' } });
    expect(longer.time!.steps).toBe(6);
    expect(longer.time!.seconds).toBeGreaterThan(c.time!.seconds!);
  });

  it('counts the evaluations: each one more adds the same time, and the sentence says their part', async () => {
    const data = studio.taskTrain();
    const check = async (evalEvery: number) =>
      (await ok<RunCheck>('checkRun', { model: studio.demo.model, data, method: 'lora', hyper: { steps: 6, batchSize: 4, evalSplit: 0.5, evalEvery, device: 'cpu' } })).time!;
    // 6 steps: at the end only (1 evaluation), every 2 (3), every step (6); the same split rows each time
    const [one, three, six] = [await check(0), await check(2), await check(1)];
    expect(three.steps).toBe(6);
    expect(three.tokens).toBe(one.tokens);
    expect((six.seconds! - one.seconds!) / (three.seconds! - one.seconds!)).toBeCloseTo(5 / 2, 9);
    // half the task's rows 6 times against 6 steps of 4 rows: most of the run
    expect(six.text).toMatch(/^(about \d+ (h \d+ )?min|under a minute) on this CPU, of which (about \d+ (h \d+ )?min|\d+%) evaluating \d+ rows 6 times \(measured /);
    const none = await ok<RunCheck>('checkRun', { model: studio.demo.model, data, method: 'lora', hyper: { steps: 6, batchSize: 4, device: 'cpu' } });
    expect(none.time!.text).not.toContain('evaluating');
  });

  it('on a GPU says no number', async () => {
    const data = studio.taskTrain();
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data, method: 'lora', hyper: { steps: 3, device: 'cpu' } });
    const folder = await openModelFolder(studio.demo.model);
    const onGpu = runTimeCheck(loadAddon(), c.config!, folder, true, await runRows(c.config!, folder));
    expect(onGpu).toEqual({ steps: 3, tokens: expect.any(Number), seconds: null, text: 'time estimated once the first steps run (no GPU speed has been measured to estimate from)' });
  });
});

describe("the service's one copy of a run's rows", () => {
  it('the time estimate and the planned steps share the last rows read; a setting or a file that changes them reads again', async () => {
    const folderDir = join(tempDir('run-rows'), 'data');
    mkdirSync(folderDir);
    const rows = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ prompt: `Question ${from + i}?`, completion: ` Answer ${from + i}.` }));
    writeJsonl(join(folderDir, 'part-1.jsonl'), rows(6));
    writeJsonl(join(folderDir, 'part-2.jsonl'), rows(4, 6));
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: folderDir, method: 'lora', hyper: { epochs: 1, batchSize: 2, warmupSteps: 1, device: 'cpu' } });
    expect(c.errors).toEqual([]);
    const config = c.config!;
    const model = await openModelFolder(studio.demo.model);
    const read = await runRows(config, model);
    // checkRun read them (both the steps and the time ask): the same rows come back, not a new read
    expect(await runRows(config, model)).toBe(read);
    expect(await plannedSteps(config, model)).toBe(5);
    expect(await runRows(config, model)).toBe(read);
    expect(read.train).toHaveLength(10);
    // another sequence length: another read
    const shorter = await runRows({ ...config, seqLen: config.seqLen - 1 }, model);
    expect(shorter).not.toBe(read);
    // a shard grown in place (the folder's own time may not move): read again, two more rows, one more step
    writeJsonl(join(folderDir, 'part-2.jsonl'), rows(6, 6));
    expect((await runRows(config, model)).train).toHaveLength(12);
    expect(await plannedSteps(config, model)).toBe(6);
  });
});
