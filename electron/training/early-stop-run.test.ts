// train --keep-best and --early-stop, on the bundled demo model (real runs,
// ~2 s each). The expected numbers come from the run's own metrics.jsonl and
// from the `eval` command on the kept adapters (an independent path to the
// same eval loss); the learning rate 3e-2 overshoots on this task, so the eval
// loss turns up after some 20 steps, as overfitting a small set does.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, readJsonLines, tempDir } from '../testing/e2e-fixtures.js';

const DEMO = resolve('resources/demo');
const MODEL = join(DEMO, 'model');
const DATA = join(DEMO, 'task-train.jsonl');
const EVAL = join(DEMO, 'task-eval.jsonl');
const RUN = ['--model', MODEL, '--data', DATA, '--eval-data', EVAL, '--steps', '40', '--batch-size', '4', '--eval-every', '2', '--lr', '3e-2', '--threads', '2'];

const evalsOf = (out: string) => readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'eval_loss' in m) as { step: number; eval_loss: number }[];
const lastStep = (out: string) => Math.max(...readJsonLines(join(out, 'metrics.jsonl')).map((m) => m.step));
const record = (out: string) => JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));

async function evalLoss(adapter: string): Promise<number> {
  const r = await cli(['eval', '--model', MODEL, '--adapter', adapter, '--data', EVAL, '--batch-size', '4', '--threads', '2']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

/** Every file of a folder, by name. */
function filesOf(dir: string): Record<string, Buffer> {
  return Object.fromEntries(readdirSync(dir).sort().map((name) => [name, readFileSync(join(dir, name))]));
}

describe('train --keep-best --early-stop on the demo model', () => {
  it('keeps the adapter of the lowest eval loss, stops 3 evaluations after it, and the final adapter is the last step', async () => {
    const out = join(tempDir('early-stop'), 'run');
    const r = await cli(['train', ...RUN, '--out', out, '--keep-best', '--early-stop', '3']);
    expect(r.code, r.stderr).toBe(0);

    const evals = evalsOf(out);
    const best = evals.reduce((a, b) => (b.eval_loss < a.eval_loss ? b : a));
    const bestIndex = evals.indexOf(best);
    // the loss turned up: the run ends exactly 3 evaluations after the best one, none of them lower
    expect(evals.length).toBe(bestIndex + 4);
    const stopStep = evals[evals.length - 1].step;
    expect(stopStep).toBeLessThan(40);
    expect(lastStep(out)).toBe(stopStep);

    const summary = JSON.parse(r.stdout);
    const reason = `stopped early at step ${stopStep}: the eval loss did not improve for 3 evaluations; best ${best.eval_loss.toFixed(4)} at step ${best.step}`;
    expect(summary).toMatchObject({ steps: stopStep, stopped_early: reason, best: { dir: join(out, 'best'), step: best.step, eval_loss: best.eval_loss } });
    expect(r.stderr).toContain(reason);
    expect(r.stderr).toContain(`best eval loss ${best.eval_loss.toFixed(4)} at step ${best.step}: ${join(out, 'best')}`);
    expect(record(out)).toMatchObject({ status: 'finished', stop_reason: reason, best_eval_loss: best.eval_loss, best_eval_step: best.step, steps_done: stopStep });
    expect(JSON.parse(readFileSync(join(out, 'best', 'best.json'), 'utf8'))).toEqual({ format: 'peft-studio-best', step: best.step, eval_loss: best.eval_loss });

    // best/ is the adapter of the best step (later, worse evaluations did not replace it) ...
    const bestScore = await evalLoss(join(out, 'best'));
    expect(Math.abs(bestScore - best.eval_loss)).toBeLessThan(1e-5 * best.eval_loss);
    // ... and the run folder's own adapter is the last step's
    const finalScore = await evalLoss(out);
    expect(Math.abs(finalScore - evals[evals.length - 1].eval_loss)).toBeLessThan(1e-5 * finalScore);
    expect(Math.abs(finalScore - bestScore)).toBeGreaterThan(1e-3);

    const runs = await cli(['runs', '--json']);
    const listed = (JSON.parse(runs.stdout) as { dir: string; best?: unknown; stop_reason?: string }[]).find((e) => e.dir === out);
    expect(listed).toMatchObject({ best: { dir: join(out, 'best'), step: best.step }, stop_reason: reason });
  });

  it('a run whose patience runs out at its last step ran to the end: it did not stop early (review)', async () => {
    const out = join(tempDir('early-stop-last'), 'run');
    const args = RUN.map((v, i) => (RUN[i - 1] === '--steps' ? '20' : v));
    const r = await cli(['train', ...args, '--scheduler', 'constant', '--out', out, '--early-stop', '3']);
    expect(r.code, r.stderr).toBe(0);
    expect(lastStep(out)).toBe(20);
    // the patience did run out at step 20 (3 evaluations after the best), which is the run's end anyway
    const evals = evalsOf(out);
    const best = evals.reduce((a, b) => (b.eval_loss < a.eval_loss ? b : a));
    expect(evals.indexOf(best)).toBe(evals.length - 4);
    expect(record(out).stop_reason ?? null).toBeNull();
    expect(r.stderr).not.toContain('stopped early');
  });

  it('with a large --early-stop-delta, stops while the eval loss still goes down slightly', async () => {
    const out = join(tempDir('early-stop-delta'), 'run');
    const r = await cli(['train', ...RUN, '--out', out, '--keep-best', '--early-stop', '2', '--early-stop-delta', '1']);
    expect(r.code, r.stderr).toBe(0);
    const evals = evalsOf(out);
    // every evaluation was lower than the one before: only the delta stopped it
    for (let i = 1; i < evals.length; i++) expect(evals[i].eval_loss).toBeLessThan(evals[i - 1].eval_loss);
    // the last improvement by more than 1 is two evaluations before the end
    const drops = evals.map((e, i) => (i === 0 ? Infinity : evals[i - 1].eval_loss - e.eval_loss));
    expect(drops.slice(-2).every((d) => d <= 1)).toBe(true);
    expect(drops[drops.length - 3]).toBeGreaterThan(1);
    const last = evals[evals.length - 1];
    expect(record(out)).toMatchObject({ status: 'finished', steps_done: last.step });
    expect(record(out).stop_reason).toBe(`stopped early at step ${last.step}: the eval loss did not improve by more than 1 for 2 evaluations; best ${last.eval_loss.toFixed(4)} at step ${last.step}`);
    // the strictly lowest loss is still the best kept
    expect(JSON.parse(readFileSync(join(out, 'best', 'best.json'), 'utf8')).step).toBe(last.step);
  });

  it('a run crashed between evaluations and resumed stops at the same step, with the same best/', async () => {
    const dir = tempDir('early-stop-resume');
    const plain = join(dir, 'plain');
    const flags = ['--keep-best', '--early-stop', '3', '--save-every', '3'];
    const p = await cli(['train', ...RUN, '--out', plain, ...flags]);
    expect(p.code, p.stderr).toBe(0);
    const stopStep = lastStep(plain);
    const bestStep = record(plain).best_eval_step as number;

    // crash points: just after best/ was written past the newest checkpoint, and
    // between the evaluations that count towards the patience
    const crashes = [`step-start@${bestStep + 1}`, `step-start@${stopStep - 1}`];
    expect(bestStep % 3).not.toBe(0); // best/ is newer than any checkpoint when the first crash lands
    for (const [i, crash] of crashes.entries()) {
      const out = join(dir, `crashed-${i}`);
      process.env.PEFT_STUDIO_CRASH_AT = crash;
      try {
        expect((await cli(['train', ...RUN, '--out', out, ...flags])).code).not.toBe(0);
      } finally {
        delete process.env.PEFT_STUDIO_CRASH_AT;
      }
      expect(record(out).status).not.toBe('finished');
      const again = await cli(['train', '--resume', out]);
      expect(again.code, again.stderr).toBe(0);
      expect(lastStep(out)).toBe(stopStep);
      expect(record(out)).toMatchObject({ status: 'finished', stop_reason: record(plain).stop_reason, best_eval_step: bestStep });
      expect(evalsOf(out)).toEqual(evalsOf(plain));
      expect(filesOf(join(out, 'best'))).toEqual(filesOf(join(plain, 'best')));
    }

    // resumed with another learning rate: best/ from past the checkpoint is not this run's; it is removed and
    // kept again by the resumed run (review: it stayed, and export / eval took it as the run's best)
    const other = join(dir, 'other-lr');
    process.env.PEFT_STUDIO_CRASH_AT = `step-start@${bestStep + 1}`;
    try {
      expect((await cli(['train', ...RUN, '--out', other, ...flags])).code).not.toBe(0);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    const resumed = await cli(['train', '--resume', other, '--lr', '3e-1']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`${join(other, 'best')} (step ${bestStep}) was written after step ${Math.floor(bestStep / 3) * 3}, where the run resumes: removed`);
    // best/ now holds an evaluation of the resumed run (or the checkpoint's own best, at the step it resumes from:
    // the weights up to there are this run's too, and the resume rewrites it), or nothing: never step ${bestStep} of
    // the first attempt
    const kept = existsSync(join(other, 'best', 'best.json')) ? JSON.parse(readFileSync(join(other, 'best', 'best.json'), 'utf8')) : null;
    if (kept !== null) {
      expect(kept.step).toBeGreaterThanOrEqual(Math.floor(bestStep / 3) * 3);
      expect(kept.step).not.toBe(bestStep);
    }
    // and the run's summary names it as its best (or names none)
    expect(record(other).summary.best ?? null).toEqual(kept === null ? null : expect.objectContaining({ step: kept.step }));
  });
});

describe('train --keep-best / --early-stop: refused settings', () => {
  const base = ['train', '--model', '/no/such/model', '--data', '/no/d.jsonl', '--out', '/tmp/never'];
  const refused = async (flags: string[], message: string) => {
    const r = await cli([...base, ...flags]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain('/no/such/model'); // refused before the model is read
  };
  it('names the flags', async () => {
    await refused(['--early-stop', '3', '--eval-every', '5'], '--early-stop stops when the eval loss stops improving, so it needs an eval set: give --eval-data FILE, or --eval-split above 0');
    await refused(['--keep-best', '--eval-split', '0.1'], '--keep-best keeps the adapter of the lowest eval loss during the run, so it needs --eval-every N above 0');
    await refused(['--early-stop', '0', '--eval-split', '0.1', '--eval-every', '5'], '--early-stop expects an integer >= 1, got 0');
    await refused(['--early-stop', '2', '--early-stop-delta', '-0.5', '--eval-split', '0.1', '--eval-every', '5'], '--early-stop-delta expects a number >= 0, got -0.5');
    await refused(['--early-stop-delta', '0.1', '--eval-split', '0.1', '--eval-every', '5'], '--early-stop-delta needs --early-stop N');
  });
});
