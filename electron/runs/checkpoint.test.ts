// Checkpoint files in process (no child): what a checkpoint holds, how a
// damaged one is recognised, the optimizer file round trip through the
// engine, metrics cut-back, pruning, leftovers and the run lock.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { openSession } from '../session.js';
import { cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { cutMetricsAfter } from '../training/metrics.js';
import { runTraining } from '../training/run.js';
import { COMPLETE_MARKER, OPTIMIZER_FILE } from './checkpoint-format.js';
import { pruneCheckpoints, removeWriteLeftovers } from './checkpoint-prune.js';
import { checkCheckpoint, newestValidCheckpoint } from './checkpoint-read.js';
import { acquireRunLock, RunLockedError } from './lock.js';
import { readOptimizerFile, writeOptimizerFile } from './optimizer-file.js';
import { processStartTicks } from './process-alive.js';
import { readRunRecord } from './run-record.js';

process.env.PEFT_STUDIO_HOME = tempDir('home');

let model: string;
let run: string;
let work: string;

beforeAll(async () => {
  model = (await tinyModel({ seed: 5 })).dir;
  work = tempDir('ckpt');
  const data = writeJsonl(join(work, 'cycle.jsonl'), cycleRows(16, 20));
  run = join(work, 'run');
  const config = trainConfigFromArgs(parseArgs(trainSpec, ['--model', model, '--data', data, '--out', run, '--steps', '5', '--batch-size', '2',
    '--dropout', '0.1', '--save-every', '1', '--keep-checkpoints', '2', '--threads', '2', '--lr', '1e-2', '--targets', 'q_proj,up_proj']));
  let log = '';
  await runTraining(config, { stderr: (t) => (log += t), stderrIsTTY: false }); // in process: same files as the child writes
  expect(log).toMatch(/saved adapter/);
});

describe('checkpoint contents', () => {
  it('holds the adapter, the optimizer moments and the trainer state, with a marker listing them', async () => {
    expect(readdirSync(join(run, 'checkpoints')).sort()).toEqual(['step-4', 'step-5']);
    const dir = join(run, 'checkpoints', 'step-4');
    const check = await checkCheckpoint({ step: 4, dir });
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    // 16 rows in batches of 2: 8 steps per epoch; one dropout draw per forward-backward
    expect(check.state).toMatchObject({
      step: 4,
      total_steps: 5,
      method: 'lora',
      rng: { seed: 42, dropout_counter: 4, data_order_seed: 42 },
      data: { epoch: 0, step_in_epoch: 4, steps_per_epoch: 8, train_examples: 16, eval_examples: 0 },
      optimizer: { kind: 'adamw', step: 4 },
      threads: 2,
    });
    expect(check.state.scheduler.next_lr).toBeCloseTo(1e-2 * (5 - 4) / 5, 15); // linear decay, step 5 of 5
    const marker = JSON.parse(readFileSync(join(dir, COMPLETE_MARKER), 'utf8'));
    expect(Object.keys(marker.files).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', OPTIMIZER_FILE, 'trainer_state.json']);
    // the final checkpoint's adapter is the run's adapter
    expect(readFileSync(join(run, 'checkpoints', 'step-5', 'adapter_model.safetensors')).equals(readFileSync(join(run, 'adapter_model.safetensors')))).toBe(true);
    expect((await readRunRecord(run))).toMatchObject({ status: 'finished', steps_done: 5, last_checkpoint: 5, total_steps: 5 });
  });

  it('the optimizer file goes through the engine and back byte for byte', async () => {
    const file = join(run, 'checkpoints', 'step-4', OPTIMIZER_FILE);
    const session = await openSession(model, { threads: 2 });
    try {
      session.engine.setupLora({ rank: 8, alpha: 16, dropout: 0, rslora: false, targets: ['q_proj', 'up_proj'], layers: null, init: 'default', seed: 1 });
      const state = await readOptimizerFile(file, session.engine);
      expect(state.step).toBe(4);
      expect(state.tensors).toHaveLength(session.engine.parameters().filter((p) => p.trainable).length);
      expect(state.tensors.some((t) => t.v.some((x) => x > 0))).toBe(true);
      session.engine.setOptimizerState(state);
      const again = join(work, 'optimizer-again.safetensors');
      await writeOptimizerFile(again, session.engine.getOptimizerState());
      expect(readFileSync(again).equals(readFileSync(file))).toBe(true);
    } finally {
      session.dispose();
    }
  });

  it('rejects a checkpoint whose marker is missing or damaged, or whose files do not match it', async () => {
    const variants: [string, (dir: string) => void, RegExp][] = [
      ['no-marker', (d) => spawnSync('rm', [join(d, COMPLETE_MARKER)]), /no COMPLETE marker/],
      ['bad-marker', (d) => writeFileSync(join(d, COMPLETE_MARKER), '{"format": "peft-studio-checkpoint", "ver'), /marker is damaged/],
      ['wrong-step', (d) => writeFileSync(join(d, COMPLETE_MARKER), readFileSync(join(d, COMPLETE_MARKER), 'utf8').replace('"step": 5', '"step": 3')), /not a version-1 marker of step 5/],
      ['flipped-byte', (d) => {
        const bytes = readFileSync(join(d, OPTIMIZER_FILE));
        bytes[bytes.length - 1] ^= 1;
        writeFileSync(join(d, OPTIMIZER_FILE), bytes);
      }, /optimizer\.safetensors does not match its sha256/],
      ['missing-file', (d) => spawnSync('rm', [join(d, 'adapter_config.json')]), /adapter_config\.json is missing/],
    ];
    for (const [name, damage, reason] of variants) {
      const copy = join(work, `damaged-${name}`);
      cpSync(run, copy, { recursive: true });
      damage(join(copy, 'checkpoints', 'step-5'));
      const point = await newestValidCheckpoint(copy);
      expect(point.checkpoint?.step, name).toBe(4);
      expect(point.rejected).toHaveLength(1);
      expect(point.rejected[0].reason, name).toMatch(reason);
    }
  });
});

describe('run folder upkeep', () => {
  it('cuts metrics.jsonl back to a step, dropping a torn last line', async () => {
    const file = join(work, 'metrics.jsonl');
    writeFileSync(file, '{"step":1,"loss":2}\n{"step":2,"loss":1.5}\n{"step":2,"eval_loss":1.7}\n{"step":3,"loss":1.2}\n{"step":4,"lo');
    const kept = await cutMetricsAfter(file, 2);
    expect(kept).toHaveLength(3);
    expect(readJsonLines(file)).toEqual([{ step: 1, loss: 2 }, { step: 2, loss: 1.5 }, { step: 2, eval_loss: 1.7 }]);
  });

  it('keeps the newest K complete checkpoints and clears leftovers of killed writes', async () => {
    const dir = join(work, 'prune');
    const make = (step: number, complete: boolean) => {
      mkdirSync(join(dir, 'checkpoints', `step-${step}`), { recursive: true });
      if (complete) writeFileSync(join(dir, 'checkpoints', `step-${step}`, COMPLETE_MARKER), '{}');
    };
    [1, 2, 3, 4].forEach((s) => make(s, s !== 2));
    make(5, false); // newer but incomplete: not counted, not removed
    mkdirSync(join(dir, 'checkpoints', '.step-6.4242.0badf00d.tmp'));
    writeFileSync(join(dir, '.run.json.4242.0badf00d.tmp'), '');
    expect(await pruneCheckpoints(dir, 2)).toEqual([2, 1]);
    expect(readdirSync(join(dir, 'checkpoints')).filter((n) => !n.startsWith('.')).sort()).toEqual(['step-3', 'step-4', 'step-5']);
    expect((await removeWriteLeftovers(dir)).length).toBe(2);
    expect(readdirSync(join(dir, 'checkpoints')).sort()).toEqual(['step-3', 'step-4', 'step-5']);
    expect(await pruneCheckpoints(dir, 0)).toEqual([]); // 0 keeps all
  });

  it('the run lock refuses a live owner and takes over a dead one', async () => {
    const dir = join(work, 'locked');
    mkdirSync(dir);
    const parent = { pid: process.ppid, host: hostname(), startTicks: processStartTicks(process.ppid) };
    writeFileSync(join(dir, 'run.lock'), JSON.stringify(parent));
    await expect(acquireRunLock(dir)).rejects.toThrow(RunLockedError);
    await expect(acquireRunLock(dir)).rejects.toThrow(/being trained by process \d+; wait for it/);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid: dead, host: hostname(), startTicks: null }));
    const release = await acquireRunLock(dir);
    expect(JSON.parse(readFileSync(join(dir, 'run.lock'), 'utf8')).pid).toBe(process.pid);
    await release();
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  });
});
