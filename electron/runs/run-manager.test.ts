// The run manager end to end on a tiny random model (real addon, real child
// processes, real files): training survives SIGKILLs at random moments and
// resumes bit-exactly; a damaged newest checkpoint falls back to the one
// before; pause/resume/cancel; NaN stops; crashes are reported and marked
// interrupted; the run index tells dead runs from live ones.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, truncateSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { Prng } from '../random/prng.js';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import type { TrainConfig } from '../training/config.js';
import { newestValidCheckpoint } from './checkpoint-read.js';
import type { RunEndEvent, RunEvent } from './events.js';
import { TrainingRun } from './manager.js';
import { processStartTicks } from './process-alive.js';
import { listRuns, recordInIndex } from './run-index.js';
import { newRunRecord, readRunRecord, writeRunRecord } from './run-record.js';

process.env.PEFT_STUDIO_HOME = tempDir('home');

/** 12 optimizer steps over 4 epochs (12 train rows, batch 2 x accum 2), dropout, eval every 3, a checkpoint every step. */
const PLAN = ['--steps', '12', '--batch-size', '2', '--grad-accum', '2', '--dropout', '0.1', '--eval-split', '0.25', '--eval-every', '3',
  '--save-every', '1', '--keep-checkpoints', '2', '--threads', '2', '--lr', '5e-3', '--targets', 'q_proj,v_proj,down_proj'];

let modelDir: string;
let data: string;
let work: string;

function configFor(out: string, flags: string[] = PLAN): TrainConfig {
  return trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out, ...flags]));
}

interface Session {
  end: RunEndEvent;
  events: RunEvent[];
}

/** One child process: start (or resume) a run, optionally act on its events, wait for its end. */
async function session(config: TrainConfig, options: { resume?: boolean; crashAt?: string; onEvent?: (e: RunEvent, run: TrainingRun) => void } = {}): Promise<Session> {
  const env = options.crashAt ? { ...process.env, PEFT_STUDIO_CRASH_AT: options.crashAt } : undefined;
  const run = new TrainingRun({ config, resume: options.resume, fork: env ? { env } : undefined });
  const events: RunEvent[] = [];
  run.onEvent((e) => {
    events.push(e);
    options.onEvent?.(e, run);
  });
  run.start();
  return { end: await run.wait(), events };
}

const adapterBytes = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
/** Every computed value of metrics.jsonl (timings aside). */
const computed = (dir: string) => readJsonLines(join(dir, 'metrics.jsonl')).map(({ step, loss, lr, grad_norm, tokens, eval_loss }) => ({ step, loss, lr, grad_norm, tokens, eval_loss }));

let baseline: string;

beforeAll(async () => {
  modelDir = (await tinyModel({ seed: 3 })).dir;
  work = tempDir('runs');
  data = writeJsonl(join(work, 'cycle.jsonl'), cycleRows(16, 24));
  baseline = join(work, 'baseline');
  const { end } = await session(configFor(baseline));
  expect(end.type, JSON.stringify(end)).toBe('finished');
});

describe('crash-proof runs', () => {
  it('ten SIGKILLs at random moments, each resumed, end with the adapter bytes of an uninterrupted run', async () => {
    const out = join(work, 'killed');
    const config = configFor(out);
    const rng = new Prng(2024);
    // Kills from the parent a few ms after a step event land between or inside
    // steps, evals and checkpoint writes; the crash points put a SIGKILL at
    // exact moments of a checkpoint write that a timer would rarely hit.
    const middle = ['timer', 'timer', 'timer', 'timer', 'step-start', 'checkpoint-files', 'checkpoint-renamed', 'checkpoint-done', 'checkpoint-renamed'];
    for (let i = middle.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [middle[i], middle[j]] = [middle[j], middle[i]];
    }
    const kills = [...middle, 'final-adapter'];
    const logs: string[] = [];
    for (const [n, mode] of kills.entries()) {
      const from = (await newestValidCheckpoint(out)).checkpoint?.step ?? 0;
      const target = mode === 'final-adapter' ? 12 : Math.min(from + 1 + rng.nextInt(2), mode === 'timer' ? 10 : 12);
      const delayMs = rng.nextInt(3);
      const { end, events } = await session(config, {
        resume: n > 0,
        crashAt: mode === 'timer' ? undefined : `${mode}@${target}`,
        onEvent(e, run) {
          if (mode !== 'timer' || e.type !== 'step' || e.step !== target) return;
          if (delayMs === 0) run.kill('SIGKILL');
          else setTimeout(() => run.kill('SIGKILL'), delayMs);
        },
      });
      logs.push(...events.filter((e) => e.type === 'log').map((e) => (e as { message: string }).message));
      expect(end.type, `kill ${n} (${mode}@${target}): ${JSON.stringify(end)}`).toBe('failed');
      if (end.type !== 'failed') return;
      expect(end.kind).toBe('killed');
      // a tiny run far below the free memory: the message does not blame memory
      expect(end.message).toMatch(/killed by SIGKILL \(by the user, or by the system when memory ran out\).*estimated to need .* GiB.*--batch-size.*--resume/);
      expect(end.message).not.toContain('most likely');
      const record = await readRunRecord(out);
      expect(record!.status).toBe('interrupted');
      expect(record!.pid).toBeNull();
    }
    // A kill inside the write, after the rename but before COMPLETE, leaves a folder resume must pass over.
    expect(logs.some((l) => /checkpoint step-\d+ is not usable \(no COMPLETE marker/.test(l))).toBe(true);

    const last = await session(config, { resume: true });
    expect(last.end.type, JSON.stringify(last.end)).toBe('finished');
    expect(adapterBytes(out).equals(adapterBytes(baseline))).toBe(true);
    expect(computed(out)).toEqual(computed(baseline));
    expect(computed(out).filter((r) => r.eval_loss !== undefined).map((r) => r.step)).toEqual([3, 6, 9, 12]);
    // the newest two checkpoints are kept, and no temp folder of a killed write is left
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-11', 'step-12']);
    const record = await readRunRecord(out);
    expect(record!.status).toBe('finished');
    expect(record!.resumes).toHaveLength(10); // every session after the first
  });

  it('ten SIGKILLs at uniformly random moments of the run (whatever it is doing then), each resumed, end bit-exact', async () => {
    // The kill time is drawn uniformly over what is left of the run, measured
    // from the child's 'started' event: it lands wherever the run is at that
    // moment (a step, an evaluation, a checkpoint or metrics write), not at a
    // moment chosen by an event.
    const rng = new Prng(77);
    // wall time of a whole run after its 'started' event (steps, evals, checkpoints)
    let startedAt = 0;
    await session(configFor(join(work, 'timing')), { onEvent: (e) => void (e.type === 'started' && (startedAt = performance.now())) });
    let msPerStep = (performance.now() - startedAt) / 12;
    let out = '';
    let config = configFor(join(work, 'unused'));
    let killed = 0;
    // A machine that ran the timing run slowly (other tests sharing the cores) and the
    // killed runs fast lets draws fall after the run's end: then again in a new folder,
    // with the kills drawn twice as early, until one folder took at least five kills.
    for (let attempt = 0; attempt < 3 && killed < 5; attempt++, msPerStep /= 2) {
      out = join(work, `random-kills-${attempt}`);
      config = configFor(out);
      killed = 0;
      for (let n = 0; n < 10; n++) {
        const from = (await newestValidCheckpoint(out)).checkpoint?.step ?? 0;
        // uniform over the first 60% of what is left, so that a slow moment of the machine rarely lets the run finish first
        const delayMs = rng.nextFloat() * 0.6 * (12 - from) * msPerStep;
        const { end } = await session(config, {
          resume: n > 0,
          onEvent(e, run) {
            if (e.type === 'started') setTimeout(() => run.kill('SIGKILL'), delayMs);
          },
        });
        if (end.type === 'finished') break; // the draw fell after the run's end
        expect(end.type, `kill ${n} after ${delayMs.toFixed(1)} ms: ${JSON.stringify(end)}`).toBe('failed');
        if (end.type === 'failed') expect(end.kind).toBe('killed');
        killed++;
      }
    }
    expect(killed).toBeGreaterThanOrEqual(5);
    const record = await readRunRecord(out);
    if (record!.status !== 'finished') {
      const last = await session(config, { resume: true });
      expect(last.end.type, JSON.stringify(last.end)).toBe('finished');
    }
    expect(adapterBytes(out).equals(adapterBytes(baseline))).toBe(true);
    expect(computed(out)).toEqual(computed(baseline));
  });

  it('a damaged newest checkpoint falls back to the one before, and the run still ends bit-exact', async () => {
    const out = join(work, 'damaged');
    const config = configFor(out);
    const first = await session(config, { crashAt: 'step-start@8' });
    expect(first.end.type).toBe('failed');
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-6', 'step-7']);
    const weights = join(out, 'checkpoints', 'step-7', 'adapter_model.safetensors');
    truncateSync(weights, statSync(weights).size - 100);

    const second = await session(config, { resume: true });
    expect(second.end.type).toBe('finished');
    const logs = second.events.filter((e) => e.type === 'log').map((e) => (e as { message: string }).message);
    expect(logs).toContainEqual(expect.stringMatching(/checkpoint step-7 is not usable \(adapter_model\.safetensors has \d+ bytes, the marker says \d+ \(truncated or altered\)\); falling back to step-6/));
    const started = second.events.find((e) => e.type === 'started');
    expect(started).toMatchObject({ startStep: 6, resumedFrom: 6 });
    expect(adapterBytes(out).equals(adapterBytes(baseline))).toBe(true);
    expect(computed(out)).toEqual(computed(baseline));
  });

  it('resuming a finished run says so and exits 0', async () => {
    const r = await cli(['train', '--resume', baseline]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/the run already finished \(12 of 12 steps\); nothing to resume/);
    expect(JSON.parse(r.stdout)).toMatchObject({ steps: 12, out: baseline });
    // the settings of a resumed run come from its run.json
    const bad = await cli(['train', '--resume', baseline, '--steps', '20']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--steps cannot be given with --resume/);
  });

  it('pause, resume and cancel through the manager API; a cancelled run resumes to the same result', async () => {
    const long = [...PLAN.filter((_, i, a) => !['--steps', '--save-every', '--eval-every'].includes(a[i]) && !['--steps', '--save-every', '--eval-every'].includes(a[i - 1])),
      '--steps', '150', '--save-every', '0', '--eval-every', '50'];
    const reference = join(work, 'long-reference');
    expect((await session(configFor(reference, long))).end.type).toBe('finished');

    const out = join(work, 'long');
    const config = configFor(out, long);
    let stepsWhilePaused = 0;
    let paused = false;
    let statusWhilePaused: string | undefined;
    const first = await session(config, {
      onEvent(e, run) {
        if (e.type === 'step' && e.step === 1) run.pause();
        if (e.type === 'step' && paused) stepsWhilePaused++;
        if (e.type === 'paused') {
          paused = true;
          void readRunRecord(out).then((r) => {
            statusWhilePaused = r?.status;
            setTimeout(() => {
              paused = false;
              run.resume();
            }, 300);
          });
        }
        if (e.type === 'resumed') run.cancel();
      },
    });
    expect(statusWhilePaused).toBe('paused');
    expect(stepsWhilePaused).toBe(0);
    const types = first.events.map((e) => e.type);
    expect(types.indexOf('paused')).toBeLessThan(types.indexOf('resumed'));
    expect(first.end.type).toBe('cancelled');
    if (first.end.type !== 'cancelled') return;
    expect(first.end.step).toBeGreaterThan(0);
    expect(first.end.step).toBeLessThan(150);
    expect(first.end.checkpoint).toBe(join(out, 'checkpoints', `step-${first.end.step}`));
    const record = await readRunRecord(out);
    expect(record!.status).toBe('cancelled');
    expect(record!.last_checkpoint).toBe(first.end.step);
    expect((await listRuns()).find((r) => r.dir === out)).toMatchObject({ status: 'cancelled', resumable: true, steps_done: first.end.step });

    const second = await session(config, { resume: true });
    expect(second.end.type).toBe('finished');
    expect(adapterBytes(out).equals(adapterBytes(reference))).toBe(true);
    expect(computed(out)).toEqual(computed(reference));
  });

  it('a NaN loss stops the run at that step, keeps the last good checkpoint, and resumes with a lower --lr', async () => {
    // Base lr 1e38 with 2 warmup steps: step 1 trains at lr 0, step 2's update
    // (5e37) overflows the LoRA weights, and step 3's loss is NaN.
    const out = join(work, 'nan');
    const flags = ['--steps', '6', '--batch-size', '2', '--save-every', '1', '--keep-checkpoints', '3', '--threads', '2', '--lr', '1e38',
      '--scheduler', 'constant', '--warmup-steps', '2'];
    const { end } = await session(configFor(out, flags));
    expect(end).toMatchObject({ type: 'failed', kind: 'non-finite', step: 2, resumable: true, checkpoint: join(out, 'checkpoints', 'step-2') });
    expect((end as { message: string }).message).toMatch(/^step 3: the loss is NaN .*last good checkpoint, step-2, is kept.*--resume .* --lr 1e\+37\. If it diverges again at once.*delete checkpoints\/step-2/);
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-1', 'step-2']); // no checkpoint of the bad step
    expect((await readRunRecord(out))!.status).toBe('failed');
    expect(readJsonLines(join(out, 'metrics.jsonl')).map((m) => m.step)).toEqual([1, 2]);

    // step-2 holds the blown-up weights: as the message says, drop it and continue from step-1 with a sane lr
    const again = await cli(['train', '--resume', out, '--lr', '1e-3']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/step 3: the loss is NaN/);
    await import('node:fs/promises').then((fs) => fs.rm(join(out, 'checkpoints', 'step-2'), { recursive: true }));
    const r = await cli(['train', '--resume', out, '--lr', '1e-3']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the learning rate changes from 1e\+38 to 0.001 from step 2 on/);
    const rows = readJsonLines(join(out, 'metrics.jsonl'));
    expect(rows.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rows.map((m) => m.lr)).toEqual([0, 5e-4, 1e-3, 1e-3, 1e-3, 1e-3]);
    expect(rows.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.grad_norm))).toBe(true);

    // without warmup the blow-up shows first in the gradient norm, which the engine refuses to apply
    const { end: gradEnd } = await session(configFor(join(work, 'nan-grad'), ['--steps', '3', '--batch-size', '2', '--threads', '2', '--lr', '1e38', '--scheduler', 'constant']));
    expect(gradEnd).toMatchObject({ type: 'failed', kind: 'non-finite', step: 1, checkpoint: null });
    // (attention carries NaN on as PyTorch does, so the loss of step 2 may be the first to show it)
    expect((gradEnd as { message: string }).message).toMatch(/^step 2: the (gradient norm|loss) is NaN .*no checkpoint was saved before it/);
  });

  it('full fine-tuning resumes bit-exactly too (model weights, optimizer state)', async () => {
    const flags = ['--method', 'full', '--steps', '4', '--batch-size', '4', '--save-every', '1', '--threads', '2', '--lr', '1e-3'];
    const reference = join(work, 'full-reference');
    expect((await session(configFor(reference, flags))).end.type).toBe('finished');
    const out = join(work, 'full');
    expect((await session(configFor(out, flags), { crashAt: 'checkpoint-files@3' })).end.type).toBe('failed');
    const resumed = await session(configFor(out, flags), { resume: true });
    expect(resumed.end.type).toBe('finished');
    expect(resumed.events.find((e) => e.type === 'started')).toMatchObject({ startStep: 2 });
    const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));
    expect(weights(out).equals(weights(reference))).toBe(true);
    expect(weights(join(out, 'checkpoints', 'step-2')).equals(weights(reference))).toBe(false); // the steps after the resume changed them
  });

  it('the user\'s stop at once (a second Ctrl-C) is reported as theirs, not as a crash or the memory killer', async () => {
    const out = join(work, 'stop-now');
    const run = new TrainingRun({ config: configFor(out, [...PLAN.slice(2), '--steps', '100']) }).start();
    for await (const e of run.events()) if (e.type === 'step' && e.step === 2) run.stopNow();
    const end = await run.wait();
    expect(end).toMatchObject({ type: 'failed', resumable: true });
    const message = (end as { message: string }).message;
    expect(message).toMatch(/stopped at once at the user's request/);
    expect(message).not.toMatch(/memory/);
    expect((await readRunRecord(out))!).toMatchObject({ status: 'interrupted', stopped_by: 'user' });
  });

  it('a native crash of the child is reported to a parent that lives on, and the run shows as interrupted', async () => {
    const out = join(work, 'segv');
    const run = new TrainingRun({ config: configFor(out, [...PLAN.slice(2), '--steps', '100']) }).start();
    const seen: RunEvent[] = [];
    for await (const e of run.events()) {
      seen.push(e);
      if (e.type === 'step' && e.step === 3) run.kill('SIGSEGV');
    }
    const end = await run.wait();
    expect(seen[0].type).toBe('started');
    expect(seen[seen.length - 1]).toBe(end);
    expect(end).toMatchObject({ type: 'failed', kind: 'crashed', resumable: true });
    expect((end as { message: string }).message).toMatch(/crashed \(SIGSEGV, a fault in the native engine\) after step \d+\. .*--resume/);
    expect((await readRunRecord(out))!.status).toBe('interrupted');
    expect((await listRuns()).find((r) => r.dir === out)).toMatchObject({ status: 'interrupted', resumable: true });
  });
});

describe('run index', () => {
  it('shows a run whose process is gone (or whose pid was reused) as interrupted', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    const cases = [
      { name: 'dead', pid: deadPid, start: null, want: 'interrupted' },
      { name: 'reused', pid: process.pid, start: (processStartTicks(process.pid) ?? 0) + 1, want: 'interrupted' },
      { name: 'alive', pid: process.pid, start: processStartTicks(process.pid), want: 'running' },
    ];
    for (const c of cases) {
      const dir = join(work, `index-${c.name}`);
      const record = { ...newRunRecord(configFor(dir)), pid: c.pid, pid_start: c.start, host: hostname(), steps_done: 4, total_steps: 12, last_checkpoint: 4 };
      await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
      await writeRunRecord(dir, record);
      await recordInIndex(dir, record);
    }
    const runs = await listRuns();
    for (const c of cases) expect(runs.find((r) => r.dir === join(work, `index-${c.name}`))?.status, c.name).toBe(c.want);
    const dead = runs.find((r) => r.dir === join(work, 'index-dead'))!;
    expect(dead).toMatchObject({ resumable: true, adapter: join(work, 'index-dead', 'checkpoints', 'step-4') });
    expect(dead.message).toMatch(/--resume/);
    expect(runs.find((r) => r.dir === baseline)).toMatchObject({ status: 'finished', steps_done: 12, total_steps: 12, adapter: baseline, method: 'lora' });
    expect(runs.find((r) => r.dir === baseline)!.best_eval_loss).toBe(Math.min(...readJsonLines(join(baseline, 'metrics.jsonl')).filter((m) => 'eval_loss' in m).map((m) => m.eval_loss)));

    const table = await cli(['runs']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^STATUS\s+STEPS\s+BEST EVAL\s+METHOD\s+CREATED\s+RUN\s+ADAPTER$/);
    expect(table.stdout).toMatch(new RegExp(`interrupted\\s+4/12\\s+-\\s+lora\\s+\\S+ \\S+\\s+${join(work, 'index-dead')}`));
    const json = JSON.parse((await cli(['runs', '--json'])).stdout);
    expect(json.find((r: { dir: string }) => r.dir === join(work, 'index-alive')).status).toBe('running');
    expect(existsSync(join(process.env.PEFT_STUDIO_HOME!, 'runs.json'))).toBe(true);
  });
});
