// The comparison's words, on run configs made by the code that writes them
// into run.json (trainConfigFromSettings, what `train` and the service
// resolve a run's settings with), and an older run.json read back as the
// app reads it (readRunRecord fills the fields it lacks). Expected values are
// written out here, not derived from the code under test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { TrainConfig } from '../../../electron/api/contract.js';
import { readRunRecord } from '../../../electron/runs/run-record.js';
import { trainConfigFromSettings, type TrainSettings } from '../../../electron/training/settings.js';
import { bestEval, compareRunSettings, evalLossCaveat, lowestOf, resultRows, runName, type RunOutcome } from './run-compare-facts.js';

const base: TrainSettings = { model: '/models/llama', data: '/data/train.jsonl', out: '/runs/r', threads: 1, steps: 200, evalSplit: 0.1, evalEvery: 50 };
const config = (s: TrainSettings): TrainConfig => trainConfigFromSettings({ ...base, ...s });
const differ = (configs: TrainConfig[]) => Object.fromEntries(compareRunSettings(configs).differ.map((r) => [r.label, r.values]));
const same = (configs: TrainConfig[]) => Object.fromEntries(compareRunSettings(configs).same.map((r) => [r.label, r.value]));

describe('compareRunSettings', () => {
  it('two learning rates: that one row differs, everything else is the same in all', () => {
    const runs = [config({ lr: 0.002 }), config({ lr: 0.0005 })];
    expect(compareRunSettings(runs).differ).toEqual([{ label: 'Learning rate', values: ['0.002', '0.0005'] }]);
    const shared = same(runs);
    expect(shared.Method).toBe('LoRA');
    expect(shared.Rank).toBe('8');
    expect(shared.Alpha).toBe('16');
    expect(shared.Length).toBe('200 steps');
    expect(shared.Evaluation).toBe('10% held out, every 50 steps');
    expect(shared['Target modules']).toBe('q_proj, v_proj');
    // settings of no run's method are not listed at all
    expect(shared['Virtual tokens']).toBeUndefined();
    expect(shared['Prompt init']).toBeUndefined();
  });

  it('LoRA, DoRA and QLoRA at two ranks: the method names DoRA and QLoRA, each setting a row of its own', () => {
    const runs = [config({ method: 'lora' }), config({ method: 'lora', dora: true }), config({ method: 'qlora', rank: 16, alpha: 32 })];
    expect(differ(runs)).toEqual({
      Method: ['LoRA', 'LoRA with DoRA', 'QLoRA'],
      Rank: ['8', '8', '16'],
      Alpha: ['16', '16', '32'],
      // QLoRA's own row: how its base is held
      '4-bit base': ['—', '—', 'NF4, blocks of 64, double quantization on'],
    });
    expect(differ([config({ method: 'qlora', dora: true, rslora: true }), config({ method: 'qlora' })])).toEqual({
      Method: ['QLoRA with DoRA', 'QLoRA'],
      Alpha: ['16 (rsLoRA)', '16'],
    });
  });

  it('what else tells runs apart gets a row: the 4-bit blocks, LoRA init, data format, early-stop delta, keep best, threads', () => {
    expect(differ([config({ method: 'qlora' }), config({ method: 'qlora', quantBlocksize: 32, doubleQuant: false })])).toEqual({
      '4-bit base': ['NF4, blocks of 64, double quantization on', 'NF4, blocks of 32, double quantization off'],
    });
    expect(differ([config({}), config({ loraInit: 'gaussian' })])).toEqual({ 'LoRA init': ['default', 'gaussian'] });
    expect(differ([config({}), config({ dataFormat: 'completion' })])).toEqual({ 'Data format': ['auto', 'completion'] });
    expect(differ([config({ earlyStop: 3 }), config({ earlyStop: 3, earlyStopDelta: 0.01 })])).toEqual({
      'Early stopping': ['after 3 evaluations without improvement', 'after 3 evaluations without improvement (by more than 0.01)'],
    });
    expect(differ([config({}), config({ keepBest: true })])).toEqual({ 'Keep best': ['off', 'on'] });
    expect(differ([config({}), config({ threads: 2 })])).toEqual({ Threads: ['1', '2'] });
  });

  it('LoRA against prompt and prefix tuning: settings of another method read "—" in its column', () => {
    const runs = [
      config({ method: 'lora', lr: 0.001, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj'] }),
      config({ method: 'prompt', lr: 0.001, virtualTokens: 12, promptInit: 'random' }),
      config({ method: 'prefix', lr: 0.001, virtualTokens: 30, prefixProjection: true, encoderHiddenSize: 64, quant: 'nf4' }),
    ];
    expect(differ(runs)).toEqual({
      Method: ['LoRA', 'Prompt tuning', 'Prefix tuning, 4-bit base'],
      Rank: ['8', '—', '—'],
      Alpha: ['16', '—', '—'],
      'LoRA dropout': ['0.05', '—', '—'],
      'Target modules': ['q_proj, k_proj, v_proj', '—', '—'],
      'Adapted layers': ['all', '—', '—'],
      'LoRA init': ['default', '—', '—'],
      '4-bit base': ['—', '—', 'NF4, blocks of 64, double quantization on'],
      'Virtual tokens': ['—', '12', '30'],
      'Prompt init': ['—', 'RANDOM', '—'],
      'Prefix projection': ['—', '—', 'on, hidden size 64'],
    });
  });

  it('data, length, batch and the rest: worded as the run\'s own facts are', () => {
    const runs = [
      config({ steps: 300, batchSize: 4, gradAccum: 2, seqLen: 256, scheduler: 'cosine', warmupSteps: 10, evalData: '/data/valid.jsonl', evalSplit: undefined }),
      config({ steps: undefined, epochs: 3, data: '/data/other.jsonl', completionOnly: false, pack: true, earlyStop: 2, seed: 7 }),
    ];
    expect(differ(runs)).toEqual({
      Data: ['/data/train.jsonl', '/data/other.jsonl'],
      Evaluation: ['on the file /data/valid.jsonl, every 50 steps', '10% held out, every 50 steps'],
      Scheduler: ['cosine, 10 warmup steps', 'linear, 0 warmup steps'],
      Length: ['300 steps', '3 epochs'],
      Batch: ['4 × 2 accumulated micro-batches (effective 8)', '1'],
      'Sequence length': ['256', '512'],
      'Loss on': ['completion tokens only', 'every token'],
      Packing: ['one row per sequence', 'rows packed into sequences'],
      'Early stopping': ['off', 'after 2 evaluations without improvement'],
      Seed: ['42', '7'],
    });
  });
});

describe('compareRunSettings: NEFTune', () => {
  it('a run with noise against one without: that row differs; runs without it share "off"', () => {
    const runs = [config({ lr: 0.001 }), config({ lr: 0.001, neftuneAlpha: 5 })];
    expect(differ(runs)).toEqual({ 'NEFTune noise': ['off', 'alpha 5, while training'] });
    expect(differ([config({ neftuneAlpha: 5 }), config({ neftuneAlpha: 15 })])).toEqual({ 'NEFTune noise': ['alpha 5, while training', 'alpha 15, while training'] });
    expect(same([config({ lr: 0.002 }), config({ lr: 0.0005 })])['NEFTune noise']).toBe('off');
    // noise on the embeddings is no method's own: a prompt-tuning column has it too
    expect(differ([config({ method: 'prompt', neftuneAlpha: 5 }), config({ method: 'prompt' })])).toEqual({ 'NEFTune noise': ['alpha 5, while training', 'off'] });
  });
});

describe('an older run.json beside a new run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-compare-facts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a run.json from before DoRA, the eval file, quantization, device and precision reads as the plain LoRA it was', async () => {
    // the config as that version wrote it: none of the later fields
    const now = config({ lr: 0.001, device: 'cpu', precision: 'fp32' });
    const { evalData: _e, quantization: _q, prompt: _p, prefix: _x, device: _d, precision: _r, dataFormat: _f, completionOnly: _c, pack: _k, keepCheckpoints: _kc, keepBest: _kb, earlyStop: _es, earlyStopDelta: _ed, neftuneAlpha: _n, ...older } = now;
    const { dora: _dora, ...olderLora } = now.lora!;
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { ...older, lora: olderLora }, status: 'finished', steps_done: 200, total_steps: 200 }));
    const record = await readRunRecord(dir);
    expect(record!.config.lora!.dora).toBeUndefined();
    expect(same([record!.config, now])['NEFTune noise']).toBe('off');
    expect(compareRunSettings([record!.config, now]).differ).toEqual([]);
    expect(differ([record!.config, config({ lr: 0.001, dora: true, device: 'cpu', precision: 'fp32' })])).toEqual({ Method: ['LoRA', 'LoRA with DoRA'] });
  });
});

describe('evalLossCaveat', () => {
  it('is null when the runs evaluate on the same rows, and names what differs otherwise', () => {
    expect(evalLossCaveat([config({ lr: 0.002 }), config({ lr: 0.0005, dora: true })])).toBeNull();
    // the seed picks the held-out rows; with an eval file it does not matter
    expect(evalLossCaveat([config({ seed: 1 }), config({ seed: 2 })])).toBe(
      'These runs differ in seed (it picks the held-out rows), so their eval losses are not measured on the same tokens and do not compare directly.',
    );
    const file = { evalData: '/data/valid.jsonl', evalSplit: undefined };
    expect(evalLossCaveat([config({ ...file, seed: 1 }), config({ ...file, seed: 2 })])).toBeNull();
    expect(evalLossCaveat([config({ ...file }), config({ seqLen: 256, completionOnly: false })])).toBe(
      'These runs differ in evaluation rows, sequence length, tokens the loss counts, so their eval losses are not measured on the same tokens and do not compare directly.',
    );
  });
});

describe('results', () => {
  const run = (over: Partial<RunOutcome>): RunOutcome => ({
    evaluates: true, evals: [], points: [], stepsDone: 0, totalSteps: 10, status: 'finished', trainableParams: null, elapsedSeconds: null, ...over,
  });
  const row = (rows: ReturnType<typeof resultRows>, label: string) => rows.find((r) => r.label === label);

  it('the best eval loss is the lowest, at the first step that reached it', () => {
    expect(bestEval([{ step: 2, evalLoss: 2.5 }, { step: 4, evalLoss: 2.125 }, { step: 6, evalLoss: 2.125 }, { step: 8, evalLoss: 2.25 }])).toEqual({ step: 4, evalLoss: 2.125 });
    expect(bestEval([])).toBeNull();
    expect(bestEval([{ step: 2, evalLoss: Number.NaN }])).toBeNull();
  });

  it('marks the lowest best eval loss, ties all, and nothing when only one run has one', () => {
    expect(lowestOf([2.3, 2.1, null])).toEqual([1]);
    expect(lowestOf([2.1, 2.3, 2.1])).toEqual([0, 2]);
    expect(lowestOf([2.1, null])).toEqual([]);
    expect(lowestOf([])).toEqual([]);
  });

  it('says each run\'s results, and a run without evaluations why', () => {
    const rows = resultRows([
      run({ evals: [{ step: 5, evalLoss: 2.31 }, { step: 10, evalLoss: 2.2 }], points: [{ step: 9, loss: 2.5 }, { step: 10, loss: 2.40621 }], stepsDone: 10 }),
      run({ evals: [{ step: 5, evalLoss: 2.05 }, { step: 10, evalLoss: 2.11 }], points: [{ step: 10, loss: 1.9 }], stepsDone: 10, status: 'cancelled' }),
      run({ evaluates: false, points: [], stepsDone: 0, totalSteps: null, status: 'training' }),
      run({ evaluates: true, stepsDone: 3, status: 'training' }),
    ]);
    expect(row(rows, 'Best eval loss')).toEqual({
      label: 'Best eval loss',
      values: ['2.2000 at step 10', '2.0500 at step 5', 'no evaluation set up', 'no evaluations yet'],
      lowest: [1],
    });
    expect(row(rows, 'Last training loss')!.values).toEqual(['2.4062 at step 10', '1.9000 at step 10', 'no steps yet', 'no steps yet']);
    expect(row(rows, 'Steps')!.values).toEqual(['10 / 10', '10 / 10', '0', '3 / 10']);
    expect(row(rows, 'Status')!.values).toEqual(['finished', 'cancelled', 'training', 'training']);
    // not known for any run: no row
    expect(row(rows, 'Trainable parameters')).toBeUndefined();
    expect(row(rows, 'Training time')).toBeUndefined();
  });

  it('trainable parameters and training time, when any run\'s are known', () => {
    const rows = resultRows([run({ trainableParams: 1_234_567, elapsedSeconds: 125 }), run({})]);
    expect(row(rows, 'Trainable parameters')!.values).toEqual(['1,234,567', 'not known']);
    expect(row(rows, 'Training time')!.values).toEqual(['2 min 05 s', 'not known']);
  });
});

describe('runName', () => {
  it('is the folder\'s last part, on POSIX and Windows paths', () => {
    expect(runName('/home/u/.peft-studio/runs/20261129-165704-lora')).toBe('20261129-165704-lora');
    expect(runName('/home/u/runs/20261129-165704-lora/')).toBe('20261129-165704-lora');
    expect(runName('C:\\Users\\u\\runs\\20261129-165704-dora')).toBe('20261129-165704-dora');
  });
});
