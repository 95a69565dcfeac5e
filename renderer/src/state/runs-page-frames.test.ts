// The Runs page takes the runs' live events as the Train page does: steps
// wait for the next animation frame and are applied together; a change of a
// run's state (started, paused, finished, ...) is applied at once, with the
// steps queued before it, so a table row never says "running" for a run that
// has ended. The frames are driven by hand: nothing here depends on timing.
import { describe, expect, it } from 'vitest';

import type { RunEvent, RunListEntry } from '../../../electron/api/contract.js';
import { scriptedTransport } from '../testing/scripted-transport.js';
import { RunsPage } from './runs-page.svelte.js';
import { Studio } from './studio.svelte.js';
import cancelled from './testdata/run-events-cancelled.json';

type StepEvent = Extract<RunEvent, { type: 'step' }>;
const RUN_DIR = '/tmp/runs-frames/run-1';
const template = (cancelled as RunEvent[]).find((e): e is StepEvent => e.type === 'step')!;
const step = (n: number): StepEvent => ({ ...template, step: n, totalSteps: 100 });

function listedEntry(status: RunListEntry['status'], stepsDone: number): RunListEntry {
  return {
    dir: RUN_DIR, model: '/models/demo', method: 'lora', status, created: '2026-11-30T00:00:00.000Z', updated: '2026-11-30T00:00:01.000Z',
    steps_done: stepsDone, total_steps: 100, best_eval_loss: null, adapter: null, resumable: false, message: null, runId: 'session-1',
  };
}

async function pageWithFrames() {
  // what the service's list says (the test moves it on as the run's record would)
  let listed = listedEntry('running', 0);
  const { api, send } = scriptedTransport(async (method) => {
    if (method === 'listRuns') return [structuredClone(listed)];
    throw new Error(`not served here: ${method}`);
  });
  const frames: (() => void)[] = [];
  const page = new RunsPage(new Studio(), api, (flush) => void frames.push(flush));
  page.subscribe();
  await page.refresh();
  return {
    page,
    send: (event: RunEvent) => send({ type: 'run', runId: 'session-1', runDir: RUN_DIR, event: structuredClone(event) }),
    frame: () => frames.splice(0).forEach((flush) => flush()),
    pending: () => frames.length,
    list: (entry: RunListEntry) => {
      listed = entry;
    },
  };
}

describe('RunsPage at animation frames', () => {
  it('applies the steps heard between two frames together at the frame, in order', async () => {
    const { page, send, frame, pending } = await pageWithFrames();
    for (let n = 1; n <= 40; n++) send(step(n));
    // one flush asked for the whole burst, nothing applied before it
    expect(pending()).toBe(1);
    expect(page.entries[0].steps_done).toBe(0);
    frame();
    expect(page.entries[0]).toMatchObject({ status: 'running', steps_done: 40, total_steps: 100 });
    send(step(41));
    expect(pending()).toBe(1);
    frame();
    expect(page.entries[0].steps_done).toBe(41);
  });

  it('shows a pause and an ending at once, with the steps queued before them, without waiting for a frame', async () => {
    const { page, send, frame, list } = await pageWithFrames();
    for (let n = 1; n <= 7; n++) send(step(n));
    send({ type: 'paused', step: 7 });
    expect(page.entries[0]).toMatchObject({ status: 'paused', steps_done: 7 });
    send({ type: 'resumed', step: 7 });
    expect(page.entries[0].status).toBe('running');
    for (let n = 8; n <= 12; n++) send(step(n));
    expect(page.entries[0].steps_done).toBe(7);
    // the record says cancelled by the time the page reads the list again
    list({ ...listedEntry('cancelled', 12), resumable: true });
    send({ type: 'cancelled', step: 12, checkpoint: `${RUN_DIR}/checkpoints/step-12`, message: 'cancelled after step 12 of 100', reason: 'user' });
    expect(page.entries[0]).toMatchObject({ status: 'cancelled', steps_done: 12, resumable: true });
    // the frame asked for before the cancel finds nothing left, and the list read after it agrees
    frame();
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    expect(page.entries[0]).toMatchObject({ status: 'cancelled', steps_done: 12 });
  });
});
