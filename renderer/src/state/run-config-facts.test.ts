// The Runs page's facts: the file a run evaluated on, or its split; a DoRA
// run said so on its LoRA line; a run.json of an older version (no evalData,
// no dora) reads as before; NEFTune's noise said when a run had it; a
// warmup given as a fraction of the run said as such, with its steps.
import { describe, expect, it } from 'vitest';

import { trainConfigFromSettings } from '../../../electron/training/settings.js';
import { withRunWarmup } from '../../../electron/training/warmup.js';
import { compareRunSettings } from './run-compare-facts.js';
import { runConfigFacts } from './run-config-facts.js';

const evaluation = (c: ReturnType<typeof trainConfigFromSettings>) => runConfigFacts(c).find((f) => f.label === 'Evaluation')?.value;

describe('runConfigFacts: Evaluation', () => {
  it('names the evaluation file, or says the share held out, and when', () => {
    const base = { model: '/m', data: '/d.jsonl', out: '/r', threads: 1 };
    expect(evaluation(trainConfigFromSettings({ ...base, evalData: '/v/valid.jsonl', evalEvery: 10 }))).toBe('on the file /v/valid.jsonl, every 10 steps');
    expect(evaluation(trainConfigFromSettings({ ...base, evalSplit: 0.125 }))).toBe('12.5% held out, at the end');
    expect(evaluation(trainConfigFromSettings(base))).toBeUndefined();
    const { evalData: _none, ...old } = trainConfigFromSettings({ ...base, evalSplit: 0.1 });
    expect(evaluation(old as ReturnType<typeof trainConfigFromSettings>)).toBe('10% held out, at the end');
  });
});

describe('runConfigFacts: LoRA', () => {
  const base = { model: '/m', data: '/d.jsonl', out: '/r', threads: 1, rank: 4, alpha: 8, dropout: 0.05 };
  const lora = (c: ReturnType<typeof trainConfigFromSettings>) => runConfigFacts(c).find((f) => f.label === 'LoRA')?.value;

  it('says DoRA when the run is one, before the rank', () => {
    expect(lora(trainConfigFromSettings({ ...base, dora: true }))).toBe('DoRA (weight-decomposed), rank 4, alpha 8, dropout 0.05, on q_proj, v_proj');
    expect(lora(trainConfigFromSettings({ ...base, method: 'qlora', dora: true, rslora: true }))).toBe('DoRA (weight-decomposed), rank 4, alpha 8 (rsLoRA), dropout 0.05, on q_proj, v_proj');
  });

  it('a plain LoRA run, and one recorded before DoRA (no dora in its run.json), read as LoRA', () => {
    expect(lora(trainConfigFromSettings(base))).toBe('rank 4, alpha 8, dropout 0.05, on q_proj, v_proj');
    const c = trainConfigFromSettings(base);
    const { dora: _none, ...older } = c.lora!;
    expect(lora({ ...c, lora: older })).toBe('rank 4, alpha 8, dropout 0.05, on q_proj, v_proj');
  });
});

describe('runConfigFacts: NEFTune', () => {
  const base = { model: '/m', data: '/d.jsonl', out: '/r', threads: 1 };
  const noise = (c: ReturnType<typeof trainConfigFromSettings>) => runConfigFacts(c).find((f) => f.label === 'NEFTune noise')?.value;

  it('says the alpha of a run trained with noise, whatever its method', () => {
    expect(noise(trainConfigFromSettings({ ...base, neftuneAlpha: 5 }))).toBe('alpha 5, while training');
    expect(noise(trainConfigFromSettings({ ...base, method: 'full', neftuneAlpha: 0.5 }))).toBe('alpha 0.5, while training');
  });

  it('says nothing of a run without it, nor of one recorded before NEFTune (no neftuneAlpha in its run.json)', () => {
    const c = trainConfigFromSettings(base);
    expect(noise(c)).toBeUndefined();
    const { neftuneAlpha: _none, ...older } = c;
    expect(noise(older as ReturnType<typeof trainConfigFromSettings>)).toBeUndefined();
  });
});

describe('runConfigFacts: Scheduler (warmup in steps, or as a fraction of the run)', () => {
  const base = { model: '/m', data: '/d.jsonl', out: '/r', threads: 1 };
  const scheduler = (c: ReturnType<typeof trainConfigFromSettings>) => runConfigFacts(c).find((f) => f.label === 'Scheduler')?.value;

  it('a fraction is said as the user gave it, with the steps run.json records it came to', () => {
    // as the run records it (withRunWarmup, when it has counted its steps): 400 x 0.03 = 12
    const started = withRunWarmup(trainConfigFromSettings({ ...base, scheduler: 'cosine', warmupRatio: 0.03 }), 400);
    expect(scheduler(started)).toBe('cosine, warmup 3% of the run (12 steps)');
    expect(scheduler(withRunWarmup(trainConfigFromSettings({ ...base, warmupRatio: 0.5 }), 1))).toBe('linear, warmup 50% of the run (1 step)');
  });

  it('steps as before; a run recorded before the fraction (no warmupRatio in its run.json) reads as steps', () => {
    expect(scheduler(trainConfigFromSettings({ ...base, warmupSteps: 10 }))).toBe('linear, 10 warmup steps');
    const { warmupRatio: _none, ...older } = trainConfigFromSettings({ ...base, warmupSteps: 1200 });
    expect(scheduler(older as ReturnType<typeof trainConfigFromSettings>)).toBe('linear, 1,200 warmup steps');
  });

  it('the Runs compare tells a fraction from the same steps given as a count', () => {
    const fraction = withRunWarmup(trainConfigFromSettings({ ...base, warmupRatio: 0.03, steps: 400 }), 400);
    const count = trainConfigFromSettings({ ...base, warmupSteps: 12, steps: 400 });
    const differ = compareRunSettings([fraction, count]).differ.map((r) => [r.label, r.values]);
    expect(differ).toEqual([['Scheduler', ['linear, warmup 3% of the run (12 steps)', 'linear, 12 warmup steps']]]);
  });
});
