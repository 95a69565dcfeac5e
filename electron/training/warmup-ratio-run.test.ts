// train --warmup-ratio end to end on a tiny random model (real engine, real
// files): the fraction comes to ceil(ratio x the run's optimizer steps),
// counted after gradient accumulation and over every epoch; run.json keeps
// the fraction and the steps it came to; every step's learning rate is the
// schedule's with those steps, and an interrupted run resumes to the same
// rates (and bytes) as one that ran straight through.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

const LR = 1e-2;
// 10 rows in micro-batches of 2: 5 per epoch, in optimizer steps of 2 (the third holds one); 3 epochs: 9 steps.
// 9 x 0.3 = 2.6999999999999997 in float64: 3 warmup steps (python3: math.ceil(9 * 0.3) == 3, as transformers counts them)
const ROWS = 10;
const STEPS = 9;
const WARMUP = 3;

/** transformers' get_linear_schedule_with_warmup, written out: lr of the update after k steps */
const linearLr = (k: number) => (k < WARMUP ? (LR * k) / WARMUP : (LR * (STEPS - k)) / (STEPS - WARMUP));

const runJson = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
const stepRows = (dir: string) => readJsonLines(join(dir, 'metrics.jsonl')).filter((m) => 'loss' in m);

describe('train --warmup-ratio', () => {
  let model: string;
  let data: string;
  let dir: string;
  const trainArgs = (out: string, ...extra: string[]) => ['train', '--model', model, '--data', data, '--out', out, '--epochs', '3', '--batch-size', '2',
    '--grad-accum', '2', '--lr', String(LR), '--scheduler', 'linear', '--warmup-ratio', '0.3', '--seed', '5', '--threads', '2', ...extra];

  beforeAll(async () => {
    model = (await tinyModel({ seed: 5 })).dir;
    dir = tempDir('warmup-ratio');
    data = writeJsonl(join(dir, 'rows.jsonl'), cycleRows(ROWS, 12));
  });

  it('warms up over ceil(ratio x the run\'s optimizer steps), and run.json keeps the fraction and the steps it came to', async () => {
    const out = join(dir, 'straight');
    const r = await cli(trainArgs(out, '--save-every', '2'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warmup: 30% of 9 steps = 3 steps (--warmup-ratio 0.3, rounded up as transformers does)');
    const record = runJson(out);
    expect(record.resolved.train_examples).toBe(ROWS);
    expect(record.resolved.total_steps).toBe(STEPS);
    expect([record.config.warmupRatio, record.config.warmupSteps]).toEqual([0.3, WARMUP]);
    const lrs = stepRows(out).map((m) => m.lr);
    expect(lrs).toHaveLength(STEPS);
    lrs.forEach((lr, k) => expect(lr, `step ${k + 1}`).toBeCloseTo(linearLr(k), 15));
    expect(lrs[0]).toBe(0); // warmup starts at 0, as in transformers
    // a checkpoint's scheduler says the same count
    const state = JSON.parse(readFileSync(join(out, 'checkpoints', 'step-4', 'trainer_state.json'), 'utf8'));
    expect(state.scheduler).toMatchObject({ warmup_steps: WARMUP, total_steps: STEPS });
    expect(state.scheduler.next_lr).toBeCloseTo(linearLr(4), 15);
  });

  it('an interrupted run resumes with the same warmup: every step\'s rate and the adapter as the run straight through', async () => {
    const straight = join(dir, 'straight');
    const broken = join(dir, 'broken');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@5';
    let crashed;
    try {
      crashed = await cli(trainArgs(broken, '--save-every', '2'));
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    expect(crashed.code).not.toBe(0);
    const before = runJson(broken);
    expect(before.steps_done).toBe(4);
    expect([before.config.warmupRatio, before.config.warmupSteps]).toEqual([0.3, WARMUP]);

    const resumed = await cli(['train', '--resume', broken]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = runJson(broken);
    expect(after.resumes.map((x: { from_step: number }) => x.from_step)).toEqual([4]);
    expect([after.config.warmupRatio, after.config.warmupSteps]).toEqual([0.3, WARMUP]);
    const rows = stepRows(broken);
    expect(rows.map((m) => m.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    // steps 5..9 ran in the resumed session: their rates are the straight run's, to the bit
    expect(rows.map((m) => m.lr)).toEqual(stepRows(straight).map((m) => m.lr));
    expect(rows.map((m) => m.loss)).toEqual(stepRows(straight).map((m) => m.loss));
    expect(readFileSync(join(broken, 'adapter_model.safetensors')).equals(readFileSync(join(straight, 'adapter_model.safetensors')))).toBe(true);
  });

  it('with --warmup-steps too, the run is refused before anything is written, naming both', async () => {
    const out = join(dir, 'both');
    const r = await cli(trainArgs(out, '--warmup-steps', '2'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('peft-studio: give either --warmup-steps or --warmup-ratio, not both');
  });
});
