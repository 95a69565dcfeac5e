// @vitest-environment node
import { describe, expect, it } from 'vitest';

import { ApiError, type DatasetReport, type ModelOverview, type TrainMethod } from '../../../electron/api/contract.js';
import { openModelFolder } from '../../../electron/models/folder.js';
import { demoPaths } from '../../../electron/service/demo.js';
import { hyperparameterSpecs } from '../../../electron/service/hyperparameters.js';
import { METHOD_SPECIFIC, STEPS, Studio, toErrorBody } from './studio.svelte.js';

// Only the fields the wizard state reads; the rest are irrelevant to these rules.
const overview = { recommended: 'lora' } as unknown as ModelOverview;
const report = { rows: { total: 3, used: 3, skipped: 0 } } as unknown as DatasetReport;

describe('Studio.reachable', () => {
  it('opens only Model and Runs at the start', () => {
    const s = new Studio();
    expect(STEPS.filter((step) => s.reachable(step))).toEqual(['model']);
    expect(s.reachable('runs')).toBe(true);
    expect(s.runSettings).toBeNull();
  });

  it('opens each step once the choices before it are made', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    // the recommendation is preselected, so Data opens too
    expect(s.method).toBe('lora');
    expect(STEPS.filter((step) => s.reachable(step))).toEqual(['model', 'method', 'data']);
    s.data = '/d.jsonl';
    s.dataReport = report;
    expect(STEPS.filter((step) => s.reachable(step))).toEqual(['model', 'method', 'data', 'hyperparameters', 'train']);
    s.runDir = '/runs/1';
    expect(STEPS.filter((step) => s.reachable(step))).toEqual([...STEPS]);
  });

  it('opens Train and Export for a resumed run without any wizard choice', () => {
    const s = new Studio();
    s.runDir = '/runs/old';
    expect(STEPS.filter((step) => s.reachable(step))).toEqual(['model', 'train', 'export']);
  });

  it('forgets the data report and settings when another model is chosen', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    s.data = '/d.jsonl';
    s.dataReport = report;
    s.hyper = { lr: 1e-3 };
    s.chooseModel('/other', { recommended: 'qlora' } as unknown as ModelOverview);
    expect(s.method).toBe('qlora');
    expect(s.dataReport).toBeNull();
    expect(s.hyper).toEqual({});
    expect(s.data).toBe('/d.jsonl'); // the file stays chosen; it is re-read for the new model
    expect(s.reachable('hyperparameters')).toBe(false);
  });

  it('drops changed settings only when the method really changes', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    s.hyper = { rank: 16 };
    s.chooseMethod('lora');
    expect(s.hyper).toEqual({ rank: 16 });
    s.chooseMethod('prompt');
    expect(s.method).toBe('prompt');
    expect(s.hyper).toEqual({});
  });

  it('keeps the settings every method has when the method changes; drops only the old method\'s own', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    const shared = { lr: 1e-3, steps: 40, epochs: 2, evalSplit: 0.2, batchSize: 2, seqLen: 96, seed: 7, gradAccum: 2, warmupSteps: 3 };
    s.hyper = { ...shared, rank: 16, alpha: 32, targets: ['q_proj'] };
    s.chooseMethod('qlora'); // LoRA's settings are QLoRA's too
    expect(s.hyper).toEqual({ ...shared, rank: 16, alpha: 32, targets: ['q_proj'] });
    s.hyper = { ...s.hyper, doubleQuant: false };
    s.chooseMethod('prefix');
    expect(s.hyper).toEqual(shared);
    s.hyper = { ...s.hyper, virtualTokens: 8, prefixProjection: true };
    s.chooseMethod('prompt');
    expect(s.hyper).toEqual({ ...shared, virtualTokens: 8 });
    s.chooseMethod('full');
    expect(s.hyper).toEqual(shared);
  });

  it('arrowing through the methods loses no method\'s own settings: they come back with the method', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    s.chooseMethod('lora');
    s.hyper = { lr: 1e-3, rank: 64, alpha: 128 };
    s.chooseMethod('qlora');
    s.hyper = { ...s.hyper, doubleQuant: false };
    s.chooseMethod('prompt');
    expect(s.hyper).toEqual({ lr: 1e-3 }); // sent and checked for prompt tuning: only its own
    s.hyper = { ...s.hyper, virtualTokens: 12 };
    s.chooseMethod('lora'); // back: LoRA's rank is 64 again
    expect(s.hyper).toEqual({ lr: 1e-3, rank: 64, alpha: 128 });
    s.chooseMethod('qlora');
    expect(s.hyper).toEqual({ lr: 1e-3, rank: 64, alpha: 128, doubleQuant: false });
    s.hyper = { ...s.hyper, rank: 32 }; // changed under QLoRA: the newest value is the one kept
    s.chooseMethod('prefix');
    expect(s.hyper).toEqual({ lr: 1e-3, virtualTokens: 12 });
    s.chooseMethod('lora');
    expect(s.hyper).toEqual({ lr: 1e-3, rank: 32, alpha: 128 });
    // another model starts over: nothing comes back
    s.chooseModel('/m2', overview);
    s.chooseMethod('prompt');
    s.chooseMethod('lora');
    expect(s.hyper).toEqual({});
  });

  it('knows which settings are method-specific exactly as the form\'s field definitions do', async () => {
    const { spec } = await openModelFolder(demoPaths().model);
    const methods: TrainMethod[] = ['lora', 'qlora', 'full', 'prompt', 'prefix'];
    const keysOf = new Map(methods.map((m) => [m, new Set(hyperparameterSpecs(m, spec, []).map((f) => f.key))]));
    const all = new Set(methods.flatMap((m) => [...keysOf.get(m)!]));
    for (const key of all) {
      const have = methods.filter((m) => keysOf.get(m)!.has(key));
      if (have.length === methods.length) expect(METHOD_SPECIFIC[key], key).toBeUndefined();
      else expect(METHOD_SPECIFIC[key], key).toEqual(have);
    }
  });

  it('builds the run settings from the choices', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    s.data = '/d.jsonl';
    s.pack = true;
    s.hyper = { epochs: 2 };
    expect(s.runSettings).toEqual({ model: '/m', data: '/d.jsonl', method: 'lora', dataFormat: 'auto', completionOnly: true, pack: true, hyper: { epochs: 2 } });
  });
});

describe('the runs training now', () => {
  it('follows the service\'s run events, and warns before another run shares the machine', () => {
    const s = new Studio();
    expect(s.sharingWarning).toBeNull();
    const ev = (runDir: string, event: object) => ({ type: 'run', runId: `id-${runDir}`, runDir, event }) as never;
    s.noteRunEvent(ev('/runs/a', { type: 'started', method: 'qlora' }));
    s.noteRunEvent(ev('/runs/a', { type: 'step', step: 1 }));
    s.noteRunEvent(ev('/runs/b', { type: 'step', step: 9 })); // started before this page: method unknown
    s.noteRunEvent({ type: 'exportLog', out: '/o', line: 'x' });
    expect(s.liveRuns).toEqual([
      { runId: 'id-/runs/a', runDir: '/runs/a', method: 'qlora' },
      { runId: 'id-/runs/b', runDir: '/runs/b', method: null },
    ]);
    expect(s.sharingWarning).toBe('2 other runs are training on this machine. A new run shares the processor and memory with them, so each runs slower.');
    s.noteRunEvent(ev('/runs/b', { type: 'cancelled', step: 9, checkpoint: null, message: '' }));
    expect(s.liveRuns.map((r) => r.runDir)).toEqual(['/runs/a']);
    expect(s.sharingWarning).toBe('Another run is training on this machine. A new run shares the processor and memory with it, so each runs slower.');
    s.noteRunEvent(ev('/runs/a', { type: 'finished', summary: {} }));
    expect(s.liveRuns).toEqual([]);
    expect(s.sharingWarning).toBeNull();
  });
});

describe('errors for the banner', () => {
  it('keeps an ApiError body (with its field) and wraps anything else as a failure', () => {
    const s = new Studio();
    s.showError(new ApiError({ code: 'invalid', field: 'hyper.lr', message: 'lr must be positive' }));
    expect(s.error).toEqual({ code: 'invalid', field: 'hyper.lr', message: 'lr must be positive' });
    s.clearError();
    expect(s.error).toBeNull();
    expect(toErrorBody(new TypeError('x is undefined'))).toEqual({ code: 'failed', message: 'x is undefined' });
    expect(toErrorBody('plain')).toEqual({ code: 'failed', message: 'plain' });
  });
});
