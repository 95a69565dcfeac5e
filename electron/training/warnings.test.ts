// Settings a run accepts but that look like a slip: one warning line each in
// the run's log, and none for ordinary settings; the same warnings
// structured for the app (the fields they are about, the form's words).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { cpuBudget } from '../system/machine.js';
import { trainConfigFromSettings } from './settings.js';
import { settingWarnings, targetShape } from './warnings.js';

/** The warnings in the command line's words (the run's log lines). */
const runWarnings = (...args: Parameters<typeof settingWarnings>) => settingWarnings(...args).map((w) => w.cli);
import type { ModelSpec } from '../engine/native.js';

// hidden 64, 4 heads of 16, 2 kv heads (kv dim 32), intermediate 128
const spec = { hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 } as ModelSpec;
const config = (s: Parameters<typeof trainConfigFromSettings>[0]) => trainConfigFromSettings({ model: 'm', data: 'd.jsonl', out: 'o', threads: 2, ...s });

describe('settingWarnings in the command line\'s words', () => {
  it('says nothing about ordinary settings', () => {
    expect(runWarnings(config({ rank: 32, warmupSteps: 9, evalSplit: 0.1, evalEvery: 5 }), spec, 10, 2)).toEqual([]);
    // --steps 0 writes the initial adapter: warmup has nothing to warm
    expect(runWarnings(config({ warmupSteps: 5, steps: 0 }), spec, 0, 2)).toEqual([]);
  });

  it('warns about --eval-every without --eval-split, warmup past the end, a rank above the smallest dimension, too many threads', () => {
    expect(runWarnings(config({ evalEvery: 10 }), spec, 100, 2)).toEqual([
      '--eval-every 10 has no effect without --eval-split: no rows are held out to evaluate on; add --eval-split (e.g. 0.1), or drop --eval-every']);
    expect(runWarnings(config({ warmupSteps: 100, lr: 0.001 }), spec, 2, 2)).toEqual([
      "--warmup-steps 100 is not below the run's 2 steps: the learning rate rises for the whole run and never reaches --lr 0.001; use fewer warmup steps"]);
    expect(runWarnings(config({ warmupSteps: 10 }), spec, 10, 2)).toHaveLength(1);
    // q_proj 64 x 64, v_proj 32 x 64 (the default targets): the smallest dimension is v_proj's 32
    expect(runWarnings(config({ rank: 33 }), spec, 10, 2)).toEqual([
      '--rank 33 is larger than the smallest dimension of the adapted layers (v_proj is 32 x 64): an update there cannot have a rank above 32, ' +
      'so the extra rank only costs memory and time; use --rank 32 or less']);
    expect(runWarnings(config({ rank: 64, targets: ['q_proj', 'o_proj', 'down_proj'] }), spec, 10, 2)).toEqual([]);
    expect(runWarnings(config({ rank: 65, targets: ['down_proj'] }), spec, 10, 2)[0]).toMatch(/^--rank 65 .*\(down_proj is 64 x 128\).* --rank 64 or less$/);
    // a rate no fine-tuning uses (a slip for 1e-3): said, not refused; prompt tuning's 3e-2 and 1 itself are not
    expect(runWarnings(config({ lr: 1e30 }), spec, 10, 2)).toEqual([
      '--lr 1e+30 is far above any fine-tuning rate (1e-6 to 1e-1; full fine-tuning about 1e-5, LoRA 1e-4 to 1e-3, prompt tuning 3e-2): ' +
      'the first steps throw the weights out of range, and the run diverges or ends with an adapter that only produces garbage; use --lr 1e-4 (the default for LoRA) or another rate in that range']);
    expect(runWarnings(config({ lr: 1 }), spec, 10, 2)).toEqual([]);
    expect(runWarnings(config({ method: 'prompt', lr: 0.03 }), spec, 10, 2)).toEqual([]);
    expect(runWarnings(config({ threads: 1000 }), spec, 10, 2)).toEqual([
      "--threads 1000 is more than this machine's 2 hardware threads: the extra threads wait on each other and make every step slower; use --threads 2 or fewer"]);
  });

  it('knows each target weight as PyTorch stores it, [out, in]', () => {
    expect((['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const).map((t) => targetShape(spec, t)))
      .toEqual([[64, 64], [32, 64], [32, 64], [64, 64], [128, 64], [128, 64], [64, 128]]);
  });
});

describe('settingWarnings: the same warnings for the app', () => {
  it('says nothing about ordinary settings, nor about warmup when the run\'s length is not known', () => {
    expect(settingWarnings(config({ rank: 32, warmupSteps: 9, evalSplit: 0.1, evalEvery: 5 }), spec, 10, 2)).toEqual([]);
    expect(settingWarnings(config({ warmupSteps: 500 }), spec, null, 2)).toEqual([]);
  });

  it('names the fields each is about and words it with the form\'s labels; its CLI words are the log line', () => {
    expect(settingWarnings(config({ evalEvery: 10 }), spec, 100, 2)).toEqual([{
      fields: ['evalEvery', 'evalSplit'],
      cli: '--eval-every 10 has no effect without --eval-split: no rows are held out to evaluate on; add --eval-split (e.g. 0.1), or drop --eval-every',
      app: 'Evaluate every 10 has no effect while Eval split is 0: no rows are held out to evaluate on; set Eval split (e.g. 0.1), or set Evaluate every back to 0',
    }]);
    // a length in epochs (steps not set): Epochs is the other field to change
    expect(settingWarnings(config({ warmupSteps: 100, lr: 0.001 }), spec, 2, 2)).toEqual([{
      fields: ['warmupSteps', 'epochs'],
      cli: "--warmup-steps 100 is not below the run's 2 steps: the learning rate rises for the whole run and never reaches --lr 0.001; use fewer warmup steps",
      app: "Warmup steps 100 is not below the run's 2 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.001); use fewer warmup steps",
    }]);
    // a length set in steps: Steps is, and the advice says so; exactly as many warmup steps as steps is a warning too
    expect(settingWarnings(config({ warmupSteps: 1, steps: 1 }), spec, 1, 2)).toEqual([{
      fields: ['warmupSteps', 'steps'],
      cli: "--warmup-steps 1 is not below the run's 1 step: the learning rate rises for the whole run and never reaches --lr 0.0002; use fewer warmup steps",
      app: "Warmup steps 1 is not below the run's 1 step: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use fewer warmup steps, or more Steps",
    }]);
    expect(settingWarnings(config({ rank: 33 }), spec, 10, 2)).toEqual([{
      fields: ['rank', 'targets'],
      cli: '--rank 33 is larger than the smallest dimension of the adapted layers (v_proj is 32 x 64): an update there cannot have a rank above 32, ' +
        'so the extra rank only costs memory and time; use --rank 32 or less',
      app: 'LoRA rank 33 is larger than the smallest dimension of the adapted layers (v_proj is 32 x 64): an update there cannot have a rank above 32, ' +
        'so the extra rank only costs memory and time; use a LoRA rank of 32 or less',
    }]);
    expect(settingWarnings(config({ threads: 3 }), spec, 10, 1)).toEqual([{
      fields: ['threads'],
      cli: "--threads 3 is more than this machine's 1 hardware thread: the extra threads wait on each other and make every step slower; use --threads 1 or fewer",
      app: "CPU threads 3 is more than this machine's 1 hardware thread: the extra threads wait on each other and make every step slower; use 1 or fewer",
    }]);
  });

  it('names a container\'s CPU quota when it holds the threads below the machine\'s', () => {
    // 1.5 CPUs of a 32-thread machine: 2 threads (machine.ts cpuBudget)
    const quota = { threads: 2, hostThreads: 32, quota: 1.5 };
    expect(settingWarnings(config({ threads: 2 }), spec, 10, quota)).toEqual([]);
    const why = "is more than this container's CPU quota allows (1.5 CPUs of the machine's 32 hardware threads): " +
      'the extra threads get no CPU time of their own, they wait on the quota and on each other and make every step slower';
    expect(settingWarnings(config({ threads: 8 }), spec, 10, quota)).toEqual([{
      fields: ['threads'],
      cli: `--threads 8 ${why}; use --threads 2 or fewer`,
      app: `CPU threads 8 ${why}; use 2 or fewer`,
    }]);
    // a quota of one CPU or above the machine's threads: the words follow the count
    expect(settingWarnings(config({ threads: 3 }), spec, 10, { threads: 1, hostThreads: 4, quota: 1 })[0].cli).toBe(
      "--threads 3 is more than this container's CPU quota allows (1 CPU of the machine's 4 hardware threads): " +
      'the extra threads get no CPU time of their own, they wait on the quota and on each other and make every step slower; use --threads 1 or fewer');
    expect(settingWarnings(config({ threads: 9 }), spec, 10, { threads: 8, hostThreads: 8, quota: 16 })[0].cli).toBe(
      "--threads 9 is more than this machine's 8 hardware threads: the extra threads wait on each other and make every step slower; use --threads 8 or fewer");
  });

  it('gives all four in order when all four apply', () => {
    const all = config({ evalEvery: 1, warmupSteps: 100, rank: 40, threads: 9 });
    expect(settingWarnings(all, spec, 5, 2).map((w) => w.fields[0])).toEqual(['evalEvery', 'warmupSteps', 'rank', 'threads']);
  });
});

describe('train prints the warnings', () => {
  it('one "warning:" line each on stderr, and the run still runs', async () => {
    const model = await tinyModel({ seed: 51 });
    const dir = tempDir('warn');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(4, 8));
    // one more than the run would take by default (the machine's, within a container's quota)
    const cpu = cpuBudget();
    const threads = cpu.threads + 1;
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--steps', '2', '--eval-every', '1',
      '--warmup-steps', '100', '--rank', '40', '--threads', String(threads)]);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    expect(warnings.map((w) => w.split(' ')[1])).toEqual(['--eval-every', '--warmup-steps', '--rank', '--threads']);
    expect(warnings[3]).toContain(cpu.quota !== null && cpu.threads < cpu.hostThreads
      ? `--threads ${threads} is more than this container's CPU quota allows`
      : `--threads ${threads} is more than this machine's ${threads - 1} hardware thread${threads - 1 === 1 ? '' : 's'}`);
  });
});
