// train --neftune-alpha through the real training path on the bundled demo
// model (real engine, real files): off (0) is the run without the flag to
// the byte; on, run.json records it and the training losses move from the
// first step, with every method, while the run's evaluations stay
// noise-free (the final eval loss is what `peft-studio eval` computes with
// the trained adapter in an engine without noise); an interrupted run
// resumes to the bytes of an uninterrupted one (the noise is fixed by the
// step, and run.json brings the alpha back).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, readJsonLines, tempDir, type CliResult } from '../testing/e2e-fixtures.js';

const DEMO = resolve('resources/demo');
const MODEL = join(DEMO, 'model');
const DATA = join(DEMO, 'task-train.jsonl');
const EVAL = join(DEMO, 'task-eval.jsonl');

/** A short run on the demo task (LoRA, 4 steps unless `extra` says otherwise); LoRA dropout stays 0, so the noise is the only randomness in a step. */
const trainArgs = (out: string, ...extra: string[]) => ['train', '--model', MODEL, '--data', DATA, '--out', out, ...(extra.includes('--steps') ? [] : ['--steps', '4']),
  '--batch-size', '4', '--lr', '1e-2', '--scheduler', 'constant', '--seed', '7', '--threads', '2', ...extra];

async function train(out: string, ...extra: string[]): Promise<CliResult> {
  const r = await cli(trainArgs(out, ...extra));
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const adapterBytes = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
const runJson = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
const losses = (dir: string) => readJsonLines(join(dir, 'metrics.jsonl')).filter((m) => 'loss' in m).map((m) => m.loss);

describe('train --neftune-alpha on the bundled demo model', () => {
  it('0 is the run without the flag, to the byte; 5 is recorded and moves the training loss from the first step', { timeout: 180_000 }, async () => {
    const dir = tempDir('neftune-run');
    const plain = join(dir, 'plain');
    const off = join(dir, 'off');
    const on = join(dir, 'on');
    await train(plain);
    await train(off, '--neftune-alpha', '0');
    await train(on, '--neftune-alpha', '5');

    expect(runJson(plain).config.neftuneAlpha).toBe(0);
    expect(runJson(off).config.neftuneAlpha).toBe(0);
    expect(runJson(on).config.neftuneAlpha).toBe(5);

    expect(adapterBytes(off).equals(adapterBytes(plain))).toBe(true);
    expect(losses(off)).toEqual(losses(plain));
    expect(losses(plain)).toHaveLength(4);

    // step 1 trains the same adapter (B = 0) on the same rows: only the noise on the embeddings differs
    const [first, firstNoisy] = [losses(plain)[0], losses(on)[0]];
    expect(Number.isFinite(firstNoisy)).toBe(true);
    expect(Math.abs(firstNoisy - first) / first).toBeGreaterThan(1e-4);
    expect(adapterBytes(on).equals(adapterBytes(plain))).toBe(false);
  });

  it('every method trains with it: the first step\'s loss moves under QLoRA, full fine-tuning, prompt and prefix tuning too', { timeout: 180_000 }, async () => {
    const dir = tempDir('neftune-methods');
    for (const method of ['qlora', 'full', 'prompt', 'prefix']) {
      const plain = join(dir, `${method}-plain`);
      const on = join(dir, `${method}-on`);
      await train(plain, '--method', method, '--steps', '1');
      await train(on, '--method', method, '--steps', '1', '--neftune-alpha', '5');
      expect(runJson(on).config).toMatchObject({ method, neftuneAlpha: 5 });
      const [first, firstNoisy] = [losses(plain)[0], losses(on)[0]];
      expect(Math.abs(firstNoisy - first) / first, method).toBeGreaterThan(1e-4);
    }
  });

  it('the run\'s evaluations add no noise: its final eval loss is what `eval` computes with the trained adapter', { timeout: 180_000 }, async () => {
    const out = join(tempDir('neftune-eval'), 'run');
    const r = await train(out, '--neftune-alpha', '5', '--eval-data', EVAL, '--eval-every', '4');
    const evals = readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'eval_loss' in m);
    expect(evals.map((m) => m.step)).toEqual([4]);
    expect(JSON.parse(r.stdout).final_eval_loss).toBe(evals[0].eval_loss);

    // a separate engine, made for evaluation (no NEFTune at all), on the same rows
    const scored = await cli(['eval', '--model', MODEL, '--adapter', out, '--data', EVAL, '--batch-size', '4', '--threads', '2']);
    expect(scored.code, scored.stderr).toBe(0);
    const reference = (JSON.parse(scored.stdout) as { loss: number }).loss;
    expect(Math.abs(evals[0].eval_loss - reference)).toBeLessThan(1e-5 * reference);
  });

  it('an interrupted run with noise resumes to the bytes of an uninterrupted one, keeping its alpha', { timeout: 180_000 }, async () => {
    const dir = tempDir('neftune-resume');
    const straight = join(dir, 'straight');
    await train(straight, '--neftune-alpha', '5', '--save-every', '2');
    const broken = join(dir, 'broken');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    let crashed;
    try {
      crashed = await cli(trainArgs(broken, '--neftune-alpha', '5', '--save-every', '2'));
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    expect(crashed.code).not.toBe(0);
    expect(runJson(broken).steps_done).toBe(2);

    // the alpha is the run's: a resume may not change it
    const changed = await cli(['train', '--resume', broken, '--neftune-alpha', '0']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('--neftune-alpha cannot be given with --resume');

    const resumed = await cli(['train', '--resume', broken]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const record = runJson(broken);
    expect(record.config.neftuneAlpha).toBe(5);
    expect(record.resumes.map((x: { from_step: number }) => x.from_step)).toEqual([2]);
    expect(losses(broken).slice(-2)).toEqual(losses(straight).slice(-2));
    expect(adapterBytes(broken).equals(adapterBytes(straight))).toBe(true);
    // and those bytes are the noise's: the same run without it ends elsewhere
    const quiet = join(dir, 'quiet');
    await train(quiet, '--save-every', '2');
    expect(adapterBytes(quiet).equals(adapterBytes(straight))).toBe(false);
  });
});
