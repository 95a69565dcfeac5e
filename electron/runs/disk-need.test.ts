// What a run writes to its disk, counted before it starts (disk-need.ts):
// the counts of checkpoints at once worked out by hand from how
// checkpoint-prune.ts keeps them, and the byte figures against the files a
// real run writes (a roomy disk: the real folder's sizes, not our formula).
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { keptStateDir } from './kept-state.js';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { bytesUnder } from '../files/disk-space.js';
import { checkpointBytesOf, checkpointsInPlace, checkpointStateBytes, diskShortfall, runDiskNeed, type DiskNeedInput } from './disk-need.js';
import { RunControl } from './control.js';
import { executeRun } from './execute.js';
import type { RunEndEvent } from './events.js';

const MiB = 2 ** 20;
const base: DiskNeedInput = {
  resultBytes: 10 * MiB, stateBytes: 8 * MiB,
  totalSteps: 1000, saveEvery: 100, keepCheckpoints: 3, keepBest: false, evalEvery: 0, resumed: null,
};
// one checkpoint: the 10 MiB result, its state (two fp32 moments of 1M parameters: 8 MiB), 4 KiB of small files
const C = 18 * MiB + 4096;
// metrics: 256 bytes a step, 128 an evaluation, 64 KiB of run.json and the like (16 KiB for a resumed run, whose run.json is there)
const metrics = (steps: number, evals = 0, resumed = false) => steps * 256 + evals * 128 + (resumed ? 16 : 64) * 1024;

describe('runDiskNeed: checkpoints at once, result, best, metrics', () => {
  it('one checkpoint costs the result, the state and the small files; the state is the moments of what is trained', async () => {
    expect(checkpointBytesOf(base)).toBe(C);
    const spec = (await tinyModel({ seed: 11 })).spec;
    const lora = { kind: 'lora' as const, lora: { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj' as const, 'v_proj' as const], layers: null, init: 'default' as const } };
    const params = spec.numLayers * 4 * (spec.hiddenSize + spec.numHeads * spec.headDim + spec.hiddenSize + spec.numKvHeads * spec.headDim);
    const adamw = checkpointStateBytes(spec, lora, 'adamw', 100);
    const sgd = checkpointStateBytes(spec, lora, 'sgd', 100);
    // two fp32 moments of every trained parameter, and a header that names them; plain SGD keeps none: its file is a header
    expect(adamw - sgd).toBeGreaterThan(8 * params);
    expect(adamw - sgd).toBeLessThan(8 * params + 200 * 4 * spec.numLayers * 2);
    expect(sgd).toBeLessThan(200);
  });

  it('keeps K and holds K + 1 for a moment once there are more than K', () => {
    // 10 writes, 3 kept: a fourth is complete before the oldest goes
    const need = runDiskNeed(base);
    expect(need).toMatchObject({ checkpointBytes: C, checkpointsAtOnce: 4, checkpointsThere: 0, resultBytes: 10 * MiB, bestBytes: 0 });
    expect(need.bytes).toBe(Math.max(4 * C, 3 * C + 10 * MiB) + metrics(1000));
  });

  it('no more checkpoints than the run writes, a stop\'s beside them, and all of them with --keep-checkpoints 0', () => {
    // steps 400 and 800; a stop after step 801..999 writes a third beside them
    expect(runDiskNeed({ ...base, saveEvery: 400 })).toMatchObject({ checkpointsAtOnce: 3, stopCheckpoint: true });
    // every 100 steps the last write is at the last step: a stop before it holds 9 and writes a 10th, as many as the run writes
    expect(runDiskNeed({ ...base, keepCheckpoints: 0 })).toMatchObject({ checkpointsAtOnce: 10, stopCheckpoint: false });
    expect(runDiskNeed({ ...base, keepCheckpoints: 0 }).checkpointsAtOnce).toBe(10);
    expect(runDiskNeed({ ...base, keepCheckpoints: 0 }).bytes).toBe(10 * C + 10 * MiB + metrics(1000));
    expect(runDiskNeed({ ...base, keepCheckpoints: 10 }).checkpointsAtOnce).toBe(10); // exactly K writes: never K + 1
  });

  it('without --save-every the one checkpoint a stop writes, or the result; best/ is a second copy of the result', () => {
    const need = runDiskNeed({ ...base, saveEvery: 0, keepBest: true, evalEvery: 50 });
    expect(need).toMatchObject({ checkpointsAtOnce: 1, stopCheckpoint: true, bestBytes: 10 * MiB });
    expect(need.bytes).toBe(C + 10 * MiB + metrics(1000, 20));
    // a run of one step cannot be stopped between steps: the result alone
    const one = runDiskNeed({ ...base, saveEvery: 0, totalSteps: 1 });
    expect(one).toMatchObject({ checkpointsAtOnce: 0, stopCheckpoint: false });
    expect(one.bytes).toBe(10 * MiB + metrics(1));
  });

  it('the result can be the fullest moment: a full model beside its checkpoints', () => {
    // SGD: a checkpoint is the model alone (plus small files), so K checkpoints and the model outweigh K + 1 checkpoints
    const need = runDiskNeed({ ...base, stateBytes: 0, keepCheckpoints: 1 });
    expect(need.checkpointsAtOnce).toBe(2);
    expect(need.bytes).toBe(Math.max(2 * (10 * MiB + 4096), 10 * MiB + 4096 + 10 * MiB) + metrics(1000));
  });

  it('a resume counts what is left and the checkpoints already in place are not written again', () => {
    // from step 700 of 1000 with 3 in place: 3 more writes, still 4 at once, 1 of them new at the fullest
    const need = runDiskNeed({ ...base, resumed: { fromStep: 700, checkpoints: 3 } });
    expect(need).toMatchObject({ checkpointsAtOnce: 4, checkpointsThere: 3 });
    expect(need.bytes).toBe(4 * C - 3 * C + metrics(300, 0, true));
    // nothing left to write: the result only
    expect(runDiskNeed({ ...base, resumed: { fromStep: 1000, checkpoints: 3 } }).bytes).toBe(3 * C + 10 * MiB - 3 * C + metrics(0, 0, true));
    // more in place than are kept now (--keep-checkpoints lowered on resume): the next one is written beside all of them
    const lowered = runDiskNeed({ ...base, keepCheckpoints: 1, resumed: { fromStep: 700, checkpoints: 4 } });
    expect(lowered).toMatchObject({ checkpointsAtOnce: 5, checkpointsThere: 4 });
    expect(lowered.bytes).toBe(C + metrics(300, 0, true));
  });

  it('words the shortfall with the flags, or the form, and the figure with one checkpoint kept', () => {
    const check = { need: runDiskNeed(base), freeBytes: 50 * MiB, fits: false };
    const cli = diskShortfall('/runs/a', check, base, 'adapter')!;
    const one = runDiskNeed({ ...base, keepCheckpoints: 1 }).bytes;
    expect(one).toBe(2 * C + metrics(1000));
    expect(cli).toMatch(/^\/runs\/a: the run writes about 72\.\d MiB there \(4 checkpoints of 18\.0 MiB at once, the adapter 10\.0 MiB, metrics and run files 314\.0 KiB\) and its disk has 50\.0 MiB free\. /);
    expect(cli).toContain(', keep one checkpoint (--keep-checkpoints 1: about 36.');
    expect(cli).toMatch(/ or choose an --out on a disk with room; --ignore-disk-check starts it anyway\.$/);
    const app = diskShortfall('/runs/a', check, base, 'adapter', { keepOne: 'Checkpoints kept 1', otherDisk: 'choose an output folder on a disk with room', anyway: '; or start anyway' })!;
    expect(app).toContain('keep one checkpoint (Checkpoints kept 1: about 36.');
    expect(app).toMatch(/ or choose an output folder on a disk with room; or start anyway\.$/);
    expect(diskShortfall('/runs/a', { ...check, fits: true }, base, 'adapter')).toBeNull();
    expect(diskShortfall('/runs/a', { ...check, freeBytes: null }, base, 'adapter')).toBeNull();
  });
});

describe('the need against what a real run writes', () => {
  let modelDir: string;
  let data: string;
  let work: string;
  beforeAll(async () => {
    modelDir = (await tinyModel({ seed: 11 })).dir;
    work = tempDir('disk-need');
    data = writeJsonl(join(work, 'd.jsonl'), cycleRows(12, 12));
    process.env.PEFT_STUDIO_HOME = join(work, 'home');
  });
  const run = (out: string, extra: string[]) => executeRun(trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out,
    '--batch-size', '2', '--threads', '2', '--seed', '3', ...extra])), { resume: false, emit: () => {} });
  const folderBytes = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

  for (const method of [['--method', 'lora'], ['--method', 'full'], ['--method', 'prefix', '--prefix-projection']]) {
    it(`${method.slice(1).join(' ')}: a checkpoint and the result are the sizes of the files written`, async () => {
      const out = join(work, method.join('').replace(/-/g, ''));
      const events: unknown[] = [];
      const end: RunEndEvent = await executeRun(trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out,
        '--batch-size', '2', '--threads', '2', '--seed', '3', '--steps', '4', '--save-every', '1', '--keep-checkpoints', '2', '--seq-len', '64', ...method])),
      { resume: false, emit: (e) => events.push(e) });
      expect(end.type, JSON.stringify(end)).toBe('finished');
      const { checkpointBytes: ckpt, resultBytes } = await needOf(out);
      const written = folderBytes(join(out, 'checkpoints', 'step-4'));
      // the weights and moments exactly; the small files (JSON, README, the marker; the optimizer file's header) within 4 KiB
      expect(Math.abs(ckpt - written), `${ckpt} vs ${written}`).toBeLessThanOrEqual(4096);
      const result = method[1] === 'full' ? folderBytes(out) - statSync(join(out, 'run.json')).size - statSync(join(out, 'metrics.jsonl')).size
        : statSync(join(out, 'adapter_model.safetensors')).size;
      // the adapter's file exactly; a full model with its side files (and its README, config) within 4 KiB
      if (method[1] === 'full') expect(Math.abs(resultBytes - result)).toBeLessThanOrEqual(4096);
      else expect(resultBytes).toBe(result);
      // at the end: 2 checkpoints and the result, which the need (3 at the fullest) covers with room for one more checkpoint only
      const need = runDiskNeed({ ...(await inputOf(out)), totalSteps: 4 });
      const atEnd = await bytesUnder(out);
      expect(need.bytes).toBeGreaterThanOrEqual(atEnd);
      expect(need.bytes - atEnd).toBeLessThanOrEqual(ckpt + 64 * 1024 + 4 * 256);
    });
  }

  it('a run stopped between steps without --save-every: its checkpoint (the model and its moments) is within the need', async () => {
    const out = join(work, 'stopped-full');
    const control = new RunControl();
    const end = await executeRun(trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out,
      '--batch-size', '2', '--threads', '2', '--seed', '3', '--steps', '6', '--method', 'full'])), {
      resume: false, control, emit: (e) => {
        if (e.type === 'step' && e.step === 2) control.cancel();
      },
    });
    expect(end).toMatchObject({ type: 'cancelled', step: 2 });
    const need = runDiskNeed(await inputOf(out));
    expect(need).toMatchObject({ checkpointsAtOnce: 1, stopCheckpoint: true });
    const written = await bytesUnder(out);
    // the stop's checkpoint is about three models: more than the result the need would otherwise have counted
    expect(folderBytes(join(out, 'checkpoints', 'step-2'))).toBeGreaterThan(2.9 * need.resultBytes);
    expect(need.bytes).toBeGreaterThanOrEqual(written);
  });

  it('a resume refused for want of disk stays resumable (the app keeps its Resume options up)', async () => {
    const out = join(work, 'refused-resume');
    const control = new RunControl();
    // a billion steps with a checkpoint each, all kept: petabytes, refused on any disk; started anyway, stopped at step 2
    const settings = ['--model', modelDir, '--data', data, '--out', out, '--batch-size', '2', '--threads', '2', '--seed', '3',
      '--steps', '1000000000', '--save-every', '1', '--keep-checkpoints', '0'];
    const started = await executeRun(trainConfigFromArgs(parseArgs(trainSpec, [...settings, '--ignore-disk-check'])), {
      resume: false, control, emit: (e) => {
        if (e.type === 'step' && e.step === 2) control.cancel();
      },
    });
    expect(started).toMatchObject({ type: 'cancelled', step: 2 });
    const { readRunRecord } = await import('./run-record.js');
    const { resumeConfig } = await import('../cli/commands/train.js');
    const record = (await readRunRecord(out))!;
    const end = await executeRun(resumeConfig(record.config, out, parseArgs(trainSpec, ['--resume', out])), { resume: true, emit: () => {} });
    expect(end).toMatchObject({ type: 'failed', resumable: true, step: null });
    expect((end as { message: string }).message).toMatch(new RegExp(`^${out}: the run writes about .* there \\(1,000,000,000 checkpoints of .* at once \\(2 already there\\)`));
    expect((await readRunRecord(out))!.status).toBe('cancelled');
  });

  it('a resume counts from a state the studio home kept when the run folder could not take it', async () => {
    const out = join(work, 'kept-resume');
    expect((await run(out, ['--steps', '6', '--save-every', '2', '--keep-checkpoints', '3'])).type).toBe('finished');
    const key = (await (await import('./run-record.js')).readRunRecord(out))!.created_at;
    const kept = join(keptStateDir(key), 'checkpoints', 'step-9');
    mkdirSync(kept, { recursive: true });
    writeFileSync(join(kept, 'COMPLETE'), '{}');
    expect(await checkpointsInPlace(out, key)).toEqual({ fromStep: 9, checkpoints: 3 });
    expect(await checkpointsInPlace(out)).toEqual({ fromStep: 6, checkpoints: 3 });
  });

  it('a resume counts the complete checkpoints in place and continues from the newest', async () => {
    const out = join(work, 'resume');
    expect((await run(out, ['--steps', '4', '--save-every', '1', '--keep-checkpoints', '3'])).type).toBe('finished');
    expect(await checkpointsInPlace(out)).toEqual({ fromStep: 4, checkpoints: 3 });
    expect(await checkpointsInPlace(join(work, 'nothing-here'))).toEqual({ fromStep: 0, checkpoints: 0 });
  });

  // the input a run of `out`'s run.json makes (what executeRun passes), read back through its own record
  async function inputOf(out: string): Promise<DiskNeedInput> {
    const { readRunRecord } = await import('./run-record.js');
    const { openModelFolder } = await import('../models/folder.js');
    const { runDiskInput } = await import('./disk-need.js');
    const record = (await readRunRecord(out))!;
    const folder = await openModelFolder(record.config.model);
    return runDiskInput(record.config, folder, record.total_steps!, null).input;
  }
  async function needOf(out: string) {
    return runDiskNeed(await inputOf(out));
  }
});
