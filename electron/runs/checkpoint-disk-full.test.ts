// A checkpoint the run folder's disk cannot take: the message names the
// checkpoint's folder in the run (never its temp), its step, that the disk is
// full, about how much the checkpoint needs (what the same checkpoint of a
// reference run on a roomy disk holds) and what is free (as df reports it),
// and how much to free before `train --resume`. The disk is a real small
// tmpfs (root only; skipped elsewhere).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { bytesFromWords, canMountSmallDisk, dfAvailable, mountSmallDisk, type SmallDisk } from '../testing/small-disk.js';
import { cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { executeRun } from './execute.js';
import { inAppWords } from '../service/app-wording.js';
import { readRunRecord } from './run-record.js';
import { runDiskInput, runDiskNeed } from './disk-need.js';
import { openModelFolder } from '../models/folder.js';

describe.skipIf(!canMountSmallDisk)('a checkpoint on a full disk (a real tmpfs)', () => {
  let modelDir: string;
  let data: string;
  let work: string;
  let disk: SmallDisk | null = null;
  const savedHome = process.env.PEFT_STUDIO_HOME;
  beforeAll(async () => {
    modelDir = (await tinyModel({ seed: 11 })).dir;
    work = tempDir('checkpoint-disk-full');
    data = writeJsonl(join(work, 'd.jsonl'), cycleRows(10, 12));
    process.env.PEFT_STUDIO_HOME = join(work, 'home');
  });
  afterEach(() => {
    disk?.unmount();
    disk = null;
  });
  afterAll(() => {
    if (savedHome === undefined) delete process.env.PEFT_STUDIO_HOME;
    else process.env.PEFT_STUDIO_HOME = savedHome;
  });
  const configFor = (out: string) => trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out, '--steps', '3',
    '--batch-size', '2', '--threads', '2', '--seed', '3', '--save-every', '1', '--eval-split', '0',
    // past the check before the start (disk-need.ts), which would refuse this run: here the write itself fails
    '--ignore-disk-check']));

  it('names the checkpoint folder and step, what it needs and what is free, and how much to free', async () => {
    const reference = join(work, 'reference');
    expect((await executeRun(configFor(reference), { resume: false, emit: () => {} })).type).toBe('finished');
    const step1 = join(reference, 'checkpoints', 'step-1');
    const checkpointBytes = readdirSync(step1).reduce((n, f) => n + statSync(join(step1, f)).size, 0);

    // room for run.json, the lock and metrics.jsonl, not for the checkpoint (KiB: half of it)
    expect(checkpointBytes).toBeGreaterThan(48 * 1024);
    disk = mountSmallDisk(Math.round(checkpointBytes / 2048));
    const out = join(disk.dir, 'run');
    const end = await executeRun(configFor(out), { resume: false, emit: () => {} });
    expect(end).toMatchObject({ type: 'failed', step: 1, resumable: true });
    const message = (end as { message: string }).message;
    expect(message).not.toContain('.tmp');
    const m = new RegExp(`^${join(out, 'checkpoints', 'step-1')}: writing failed \\(ENOSPC: the disk is full; the folder needs about (\\S+ \\S+), and (\\S+ \\S+) is free there\\)\\. ` +
      `The checkpoint of step 1 of 3 could not be written, so the run stopped\\. The trained weights of step 1 are kept as a checkpoint in \\S+\\. ` +
      `Free at least (\\S+ \\S+) on the disk of ${out}, then run peft-studio train --resume ${out}: it continues from step 1\\.$`).exec(message);
    expect(m, message).not.toBeNull();
    const [need, free, toFree] = [m![1], m![2], m![3]].map(bytesFromWords);
    // "about": the weights and moments exactly, the small JSON files within a few KiB
    expect(Math.abs(need.bytes - checkpointBytes)).toBeLessThanOrEqual(4096 + need.within);
    // (the run's end rewrote run.json after the message: a page either way)
    expect(Math.abs(free.bytes - dfAvailable(disk.dir))).toBeLessThanOrEqual(4096 + free.within);
    expect(Math.abs(toFree.bytes - (need.bytes - free.bytes))).toBeLessThanOrEqual(toFree.within + need.within + free.within);
    expect(readdirSync(join(out, 'checkpoints'))).toEqual([]); // no temp folder left behind
    // the app says the way on as its Resume (service/app-wording.ts), not the command line
    const app = inAppWords(message, 'start');
    expect(app).toMatch(new RegExp(`Free at least \\S+ \\S+ on the disk of ${out}, then resume it \\(Resume\\): it continues from step 1\\.$`));
    expect(app).not.toContain('peft-studio train');
  });

  it('without --ignore-disk-check the run is refused before it starts, with what it writes and what is free', async () => {
    const reference = join(work, 'reference-2');
    expect((await executeRun(configFor(reference), { resume: false, emit: () => {} })).type).toBe('finished');
    const step1 = join(reference, 'checkpoints', 'step-1');
    const checkpointBytes = readdirSync(step1).reduce((n, f) => n + statSync(join(step1, f)).size, 0);
    disk = mountSmallDisk(Math.round(checkpointBytes / 2048));
    const out = join(disk.dir, 'run');
    const config = { ...configFor(out), ignoreDiskCheck: false };
    const end = await executeRun(config, { resume: false, emit: () => {} });
    expect(end.type).toBe('failed');
    const message = (end as { message: string }).message;
    const m = new RegExp(`^${out}: the run writes about (\\S+ \\S+) there \\(3 checkpoints of (\\S+ \\S+) at once, the adapter \\S+ \\S+, metrics and run files \\S+ \\S+\\) ` +
      `and its disk has (\\S+ \\S+) free\\. Free (\\S+ \\S+) there, keep one checkpoint \\(--keep-checkpoints 1: about \\S+ \\S+\\) or choose an --out on a disk with room; --ignore-disk-check starts it anyway\\.$`).exec(message);
    expect(m, message).not.toBeNull();
    const [need, checkpoint, free, toFree] = [m![1], m![2], m![3], m![4]].map(bytesFromWords);
    expect(Math.abs(toFree.bytes - (need.bytes - free.bytes))).toBeLessThanOrEqual(toFree.within + need.within + free.within);
    expect(Math.abs(checkpoint.bytes - checkpointBytes)).toBeLessThanOrEqual(4096 + checkpoint.within);
    expect(Math.abs(free.bytes - dfAvailable(disk.dir))).toBeLessThanOrEqual(4096 + free.within);
    // refused before anything was written: not even the run folder
    expect(readdirSync(disk.dir)).toEqual([]);
  });

  it('--overwrite counts the old run\'s files as free: they go before the new run writes', async () => {
    const reference = join(work, 'reference-3');
    const args = (out: string) => trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out, '--steps', '3',
      '--batch-size', '2', '--threads', '2', '--seed', '3', '--save-every', '1', '--eval-split', '0']));
    expect((await executeRun(args(reference), { resume: false, emit: () => {} })).type).toBe('finished');
    const record = (await readRunRecord(reference))!;
    const need = runDiskNeed(runDiskInput(record.config, await openModelFolder(record.config.model), record.total_steps!, null).input);
    // room for one run and a little: the second run fits only in the room the first one's files leave when they go
    disk = mountSmallDisk(Math.ceil((need.bytes + 96 * 1024) / 4096) * 4);
    const out = join(disk.dir, 'run');
    expect((await executeRun(args(out), { resume: false, emit: () => {} })).type).toBe('finished');
    expect(dfAvailable(disk.dir)).toBeLessThan(need.bytes);
    const again = await executeRun(args(out), { resume: false, overwrite: true, emit: () => {} });
    expect(again.type, JSON.stringify(again)).toBe('finished');
  });
});
