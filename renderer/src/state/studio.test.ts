// @vitest-environment node
import { describe, expect, it } from 'vitest';

import { ApiError, type DatasetReport, type ModelOverview } from '../../../electron/api/contract.js';
import { STEPS, Studio, toErrorBody } from './studio.svelte.js';

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

  it('builds the run settings from the choices', () => {
    const s = new Studio();
    s.chooseModel('/m', overview);
    s.data = '/d.jsonl';
    s.pack = true;
    s.hyper = { epochs: 2 };
    expect(s.runSettings).toEqual({ model: '/m', data: '/d.jsonl', method: 'lora', dataFormat: 'auto', completionOnly: true, pack: true, hyper: { epochs: 2 } });
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
