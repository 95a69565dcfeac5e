// The evaluations the estimate counts are the ones a run does: short runs of
// the bundled demo model with several --steps / --eval-every combinations
// (an eval file, an eval split, none; --keep-best with --early-stop), their
// evaluation steps read from metrics.jsonl (the rows with eval_loss) against
// evaluationCount. run.json's estimate holds the evaluations' part, which
// grows with the number of evaluations the run really did, and the line
// says it when it is a large share.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, readJsonLines, tempDir } from '../testing/e2e-fixtures.js';
import { evaluationCount } from './eval-work.js';
import { CHECKPOINTING_FACTOR, EVAL_OVER_TRAIN_EFFICIENCY, METHOD_EFFICIENCY } from './time-estimate.js';

const home = mkdtempSync(join(tmpdir(), 'ps-eval-count-home-'));
const before = process.env.PEFT_STUDIO_HOME;
beforeAll(() => { process.env.PEFT_STUDIO_HOME = home; });
afterAll(() => { if (before === undefined) delete process.env.PEFT_STUDIO_HOME; else process.env.PEFT_STUDIO_HOME = before; });

const DEMO = resolve('resources/demo');
const EVAL_FILE = join(DEMO, 'task-eval.jsonl');

interface Case {
  name: string;
  steps: number;
  evalEvery: number;
  args: string[];
  /** the steps the trainer is known to evaluate at (trainer.ts), written out */
  evalSteps: number[];
}

const CASES: Case[] = [
  { name: 'every 2 of 5 steps, an eval file: the last step too', steps: 5, evalEvery: 2, args: ['--eval-data', EVAL_FILE], evalSteps: [2, 4, 5] },
  { name: 'every 3 of 6 steps, an eval split: the last step once', steps: 6, evalEvery: 3, args: ['--eval-split', '0.2'], evalSteps: [3, 6] },
  { name: 'no --eval-every: at the end only', steps: 3, evalEvery: 0, args: ['--eval-data', EVAL_FILE], evalSteps: [3] },
  { name: 'every 5 of 2 steps: at the end only', steps: 2, evalEvery: 5, args: ['--eval-split', '0.2'], evalSteps: [2] },
  { name: 'no eval rows: never', steps: 4, evalEvery: 2, args: [], evalSteps: [] },
  { name: '--keep-best and --early-stop judge the same evaluations', steps: 6, evalEvery: 2, args: ['--eval-data', EVAL_FILE, '--keep-best', '--early-stop', '5', '--gradient-checkpointing'], evalSteps: [2, 4, 6] },
];

describe('the evaluations counted before a run are the ones it does (demo model)', () => {
  const dir = tempDir('eval-count');
  const runs = new Map<string, { evalSteps: number[]; resolved: Record<string, number>; line: string }>();

  for (const c of CASES) {
    it(c.name, async () => {
      const out = join(dir, `run-${runs.size}`);
      const r = await cli(['train', '--model', join(DEMO, 'model'), '--data', join(DEMO, 'task-train.jsonl'), '--out', out, '--steps', String(c.steps),
        '--batch-size', '4', '--eval-every', String(c.evalEvery), '--threads', '2', ...c.args]);
      expect(r.code, r.stderr).toBe(0);
      const evalSteps = readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'eval_loss' in m).map((m) => m.step);
      const resolved = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).resolved;
      expect(evalSteps).toEqual(c.evalSteps);
      expect(evaluationCount(c.steps, c.evalEvery, resolved.eval_examples)).toBe(evalSteps.length);

      // run.json: training and evaluating together, each part at its efficiency (checkpointing is the training's alone)
      const entry = JSON.parse(readFileSync(join(home, 'calibration.json'), 'utf8')).entries.find((e: { threads: number }) => e.threads === 2);
      const ckpt = c.args.includes('--gradient-checkpointing') ? CHECKPOINTING_FACTOR : 1;
      const speed = entry.gflops * 1e9 * METHOD_EFFICIENCY.lora;
      expect(resolved.time_estimate_eval_s).toBeCloseTo(resolved.time_estimate_eval_flops / (speed * EVAL_OVER_TRAIN_EFFICIENCY.lora), 12);
      expect(resolved.time_estimate_s).toBeCloseTo((resolved.time_estimate_flops - resolved.time_estimate_eval_flops) / (speed * ckpt) + resolved.time_estimate_eval_s, 12);
      expect(resolved.time_estimate_eval_flops > 0).toBe(evalSteps.length > 0);
      runs.set(c.name, { evalSteps, resolved, line: r.stderr.split('\n').find((l) => l.startsWith('this run: ')) ?? '' });
    });
  }

  it('the evaluations\' part is one evaluation times the evaluations the run did, and the line says it when large', () => {
    // the same eval file at the same batch size: 3 evaluations are 3 times the work of 1
    const three = runs.get(CASES[0].name)!, one = runs.get(CASES[2].name)!;
    expect(three.resolved.time_estimate_eval_flops / one.resolved.time_estimate_eval_flops).toBeCloseTo(three.evalSteps.length / one.evalSteps.length, 12);
    // 57 eval rows 3 times against 5 steps of 4 rows: most of the run
    const rows = readFileSync(EVAL_FILE, 'utf8').trim().split('\n').length;
    expect(three.line).toMatch(new RegExp(`^this run: 5 steps, [\\d.k]+ tokens; (about \\d+ min|under a minute) on this CPU, of which (about \\d+ min|\\d+%) evaluating ${rows} rows 3 times \\(measured \\d+ GFLOP/s x ${METHOD_EFFICIENCY.lora.toFixed(2)} for LoRA; an estimate, ±30%\\)$`));
    const none = runs.get(CASES[4].name)!;
    expect(none.resolved.time_estimate_eval_s).toBe(0);
    expect(none.line).not.toContain('evaluating');
  });
});
