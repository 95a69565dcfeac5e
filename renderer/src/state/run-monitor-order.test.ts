// What a run's page shows must not depend on whether its record (runHistory) was read before or after the events
// it heard live: a cancelled run whose checkpoint and ending were heard first (Train.test's: 9 of 10 times so) showed
// no length, memory or elapsed time; a checkpoint heard first left a running run "waiting".
import { describe, expect, it } from 'vitest';
import type { RunEvent, RunHistory } from '../../../electron/api/contract.js';
import { RunMonitor } from './run-monitor.svelte.js';
import cancelled from './testdata/run-events-cancelled.json';

const CANCELLED = cancelled as RunEvent[];
const steps = CANCELLED.filter((e): e is Extract<RunEvent, { type: 'step' }> => e.type === 'step');
const started = CANCELLED[0] as Extract<RunEvent, { type: 'started' }>;
const last = steps[steps.length - 1];
/** the record as runHistory answers it while the run trains (the live figures the service kept from its events) */
const history: RunHistory = {
  dir: '/tmp/d2/cancelled', runId: 'session-1',
  entry: { dir: '/tmp/d2/cancelled', model: '/m', method: 'lora', status: 'running', created: '', updated: '', steps_done: 4, total_steps: 20, best_eval_loss: null, adapter: null, resumable: false, message: null },
  config: {} as RunHistory['config'],
  steps: steps.map((e) => ({ step: e.step, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond, inputTokensPerSecond: e.inputTokensPerSecond, elapsedSeconds: e.elapsedSeconds })),
  evals: [], trainableParams: null, warnings: [], trainedPromptFormat: null,
  live: { memory: last.memory, memoryEstimateBytes: started.memoryEstimateBytes, availableMemoryBytes: started.availableMemoryBytes, elapsedSeconds: last.elapsedSeconds, timeLine: null },
} as RunHistory;
const ending = CANCELLED.slice(-2); // checkpoint, cancelled
const shown = (m: RunMonitor) => ({
  status: m.status, step: m.step, totalSteps: m.totalSteps, progress: m.progress, message: m.message, resumable: m.resumable,
  tokensPerSecond: m.tokensPerSecond, elapsedSeconds: m.elapsedSeconds, memory: m.memory, memoryEstimateBytes: m.memoryEstimateBytes,
});

describe('RunMonitor: the record, then the ending heard live, or the other way round', () => {
  it('shows the same figures either way', () => {
    const recordFirst = new RunMonitor();
    recordFirst.loadHistory(structuredClone(history));
    recordFirst.applyAll(ending);
    const endingFirst = new RunMonitor();
    endingFirst.applyAll(ending);
    endingFirst.loadHistory(structuredClone(history));
    expect(shown(endingFirst)).toEqual(shown(recordFirst));
  });

  it('a checkpoint or a log line heard first: the record still says the run is running, and how far', () => {
    const m = new RunMonitor();
    m.applyAll(ending.slice(0, 1)); // the checkpoint
    m.apply({ type: 'log', level: 'info', message: 'a line' });
    m.loadHistory(structuredClone(history));
    expect([m.status, m.step, m.totalSteps]).toEqual(['running', 4, 20]);
    expect(m.lastCheckpoint?.step).toBe((ending[0] as Extract<RunEvent, { type: 'checkpoint' }>).step);
  });
});
