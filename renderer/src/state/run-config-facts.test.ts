// The Runs page's evaluation fact: the file a run evaluated on, or its split;
// a run.json of an older version (no evalData) reads as before.
import { describe, expect, it } from 'vitest';

import { trainConfigFromSettings } from '../../../electron/training/settings.js';
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
