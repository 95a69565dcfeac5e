// The Train page applies a run's events at animation frames, in bursts
// (run-monitor-frames.ts): what it shows after a burst must be exactly what
// the same events applied one at a time show, wherever the frames fall; and
// a window that gives no frames at all (hidden) must neither lose events nor
// hold them without end. The frames are driven by hand: nothing here depends
// on timing.
import { describe, expect, it } from 'vitest';

import type { RunEvent } from '../../../electron/api/contract.js';
import { scriptedTransport } from '../testing/scripted-transport.js';
import { RunMonitor } from './run-monitor.svelte.js';
import { Studio } from './studio.svelte.js';
import cancelled from './testdata/run-events-cancelled.json';
import pausedResumed from './testdata/run-events-paused-resumed.json';
import { QUEUED_EVENTS_LIMIT, TrainPage } from './train-page.svelte.js';

type StepEvent = Extract<RunEvent, { type: 'step' }>;
type StartedEvent = Extract<RunEvent, { type: 'started' }>;
const CANCELLED = cancelled as RunEvent[];
const PAUSED = pausedResumed as RunEvent[];
const RUN_ID = 'session-1';
const RUN_DIR = '/tmp/d2/frames';

const started = CANCELLED[0] as StartedEvent;
const template = CANCELLED.find((e): e is StepEvent => e.type === 'step')!;
const step = (n: number, totalSteps: number, loss = 10 - n / 100): StepEvent => ({
  ...template, step: n, totalSteps, loss, lr: 2e-4 * (1 - n / totalSteps), elapsedSeconds: n / 175, etaSeconds: (totalSteps - n) / 175,
});

/**
 * A longer run than the recorded ones, with what reorders or repeats steps:
 * 40 steps with evaluations, log lines and checkpoints, a pause, then a
 * resume from the checkpoint at step 30 (a new session: steps 31-40 again,
 * other losses) that finishes at 50.
 */
function resumedRun(): RunEvent[] {
  const events: RunEvent[] = [{ ...started, totalSteps: 50 }];
  for (let n = 1; n <= 40; n++) {
    events.push(step(n, 50));
    if (n % 10 === 0) events.push({ type: 'eval', step: n, evalLoss: 9 - n / 50, bestEvalLoss: 9 - n / 50 });
    if (n === 15) events.push({ type: 'log', level: 'warning', message: 'a warning line at step 15' });
    if (n === 30) events.push({ type: 'checkpoint', step: 30, dir: `${RUN_DIR}/checkpoints/step-30`, bytes: 4096, seconds: 0.01 });
    if (n === 33) events.push({ type: 'paused', step: 33 }, { type: 'resumed', step: 33 });
  }
  events.push({ ...started, totalSteps: 50, startStep: 30, resumedFrom: 30 });
  for (let n = 31; n <= 50; n++) events.push(step(n, 50, 5 - n / 100));
  events.push({ type: 'eval', step: 50, evalLoss: 8, bestEvalLoss: 8 });
  events.push({ type: 'finished', summary: { out: RUN_DIR, method: 'lora', steps: 50, train_examples: 99, eval_examples: 12, final_loss: 4.5, final_eval_loss: 8, elapsed_s: 0.3 } });
  return events;
}

/** Everything the page shows of a run's monitor. */
const view = (m: RunMonitor) => ({
  status: m.status, method: m.method, engine: m.engine, totalSteps: m.totalSteps, step: m.step, startStep: m.startStep,
  progress: m.progress, points: m.points, evals: m.evals, bestEvalLoss: m.bestEvalLoss, latestLoss: m.latestLoss,
  tokensPerSecond: m.tokensPerSecond, inputTokensPerSecond: m.inputTokensPerSecond, etaSeconds: m.etaSeconds, elapsedSeconds: m.elapsedSeconds,
  memory: m.memory, warnings: m.warnings, log: m.log, lastCheckpoint: m.lastCheckpoint, message: m.message, resumable: m.resumable,
  summary: m.summary, stoppedEarly: m.stoppedEarly, best: m.best, trainExamples: m.trainExamples, evalExamples: m.evalExamples,
});

/** A page following RUN_DIR over a transport the test sends on; its frames come when the test says. */
async function followedPage(): Promise<{ page: TrainPage; send: (e: RunEvent) => void; frame: () => void; pending: () => number }> {
  const { api, send } = scriptedTransport();
  const frames: (() => void)[] = [];
  const page = new TrainPage(new Studio(), api, (flush) => void frames.push(flush));
  page.subscribe();
  await page.follow(RUN_ID, RUN_DIR);
  return {
    page,
    send: (event) => send({ type: 'run', runId: RUN_ID, runDir: RUN_DIR, event: structuredClone(event) }),
    frame: () => frames.splice(0).forEach((flush) => flush()),
    pending: () => frames.length,
  };
}

/** Where frames fall: after these event counts (a fixed pseudo-random sequence, so a failure repeats). */
function frameBoundaries(count: number, seed: number): Set<number> {
  const at = new Set<number>();
  let x = seed;
  for (let i = 1; i <= count; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    if (x % 5 === 0) at.add(i);
  }
  return at;
}

describe('TrainPage at animation frames', () => {
  it('shows after each burst exactly what applying its events one at a time shows, wherever the frames fall', async () => {
    for (const events of [CANCELLED, PAUSED, resumedRun()]) {
      const patterns: [string, Set<number>][] = [
        ['a frame after every event', new Set(events.map((_, i) => i + 1))],
        ['one frame at the end', new Set()],
        ['every third event', new Set(events.map((_, i) => i + 1).filter((i) => i % 3 === 0))],
        ['pseudo-random frames', frameBoundaries(events.length, 7)],
      ];
      for (const [name, boundaries] of patterns) {
        const { page, send, frame } = await followedPage();
        const oneByOne = new RunMonitor();
        events.forEach((e, i) => {
          send(e);
          oneByOne.apply(e);
          if (!boundaries.has(i + 1)) return;
          frame();
          expect(view(page.monitor), `${name}, after event ${i + 1} of ${events.length}`).toEqual(view(oneByOne));
        });
        frame();
        expect(view(page.monitor), `${name}, at the end`).toEqual(view(oneByOne));
      }
    }
    // what the views held: every step kept (a resumed session's repeats replace the steps they repeat), in order
    const { page, send, frame } = await followedPage();
    resumedRun().forEach(send);
    frame();
    expect(page.monitor.points.map((p) => p.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(page.monitor.points[30]).toEqual({ step: 31, loss: 5 - 31 / 100, lr: 2e-4 * (1 - 31 / 50) });
    expect(page.monitor.status).toBe('finished');
  });

  it('between two frames: the steps wait, a change of the run\'s state is shown at once with every step before it', async () => {
    const { page, send, frame, pending } = await followedPage();
    send({ ...started, totalSteps: 10 });
    expect(page.monitor.status).toBe('running'); // at once
    for (let n = 1; n <= 4; n++) send(step(n, 10));
    expect(page.monitor.points).toEqual([]);
    expect(pending()).toBe(1); // one frame asked for the four
    frame();
    expect(page.monitor.points.map((p) => p.step)).toEqual([1, 2, 3, 4]);

    for (const [ending, status] of [
      [{ type: 'paused', step: 6 }, 'paused'],
      [{ type: 'resumed', step: 6 }, 'running'],
      [{ type: 'finished', summary: { out: RUN_DIR, method: 'lora', steps: 10, train_examples: 99, eval_examples: 12, final_loss: 9.9, final_eval_loss: null, elapsed_s: 1 } }, 'finished'],
    ] as const) {
      const before = page.monitor.points.length;
      send(step(before + 1, 10));
      send(step(before + 2, 10));
      send(ending);
      // no frame: the state and the steps before it are there now
      expect(page.monitor.status).toBe(status);
      expect(page.monitor.points.map((p) => p.step)).toEqual(Array.from({ length: before + 2 }, (_, i) => i + 1));
    }
    expect(page.monitor.step).toBe(10);
    expect(page.monitor.latestLoss).toBe(10 - 10 / 100);
    frame(); // the frame asked for meanwhile has nothing left to apply
    expect(page.monitor.points).toHaveLength(10);

    // a failure too, in another run of this folder
    const failing = await followedPage();
    failing.send({ ...started, totalSteps: 10 });
    failing.send(step(1, 10));
    failing.send({ type: 'failed', kind: 'error', step: 1, message: 'out of memory', resumable: false, checkpoint: null });
    expect(failing.page.monitor.status).toBe('failed');
    expect(failing.page.monitor.points.map((p) => p.step)).toEqual([1]);
  });

  it('with no frames at all (a hidden window): every event is applied, in bursts of at most QUEUED_EVENTS_LIMIT', async () => {
    const { page, send } = await followedPage();
    const total = 2 * QUEUED_EVENTS_LIMIT + 3;
    send({ ...started, totalSteps: total });
    for (let n = 1; n <= QUEUED_EVENTS_LIMIT - 1; n++) send(step(n, total));
    expect(page.monitor.points).toHaveLength(0);
    send(step(QUEUED_EVENTS_LIMIT, total)); // the queue is full: applied now, without a frame
    expect(page.monitor.points).toHaveLength(QUEUED_EVENTS_LIMIT);
    for (let n = QUEUED_EVENTS_LIMIT + 1; n <= total; n++) send(step(n, total));
    expect(page.monitor.points).toHaveLength(2 * QUEUED_EVENTS_LIMIT);
    // the rest wait for the ending (or a frame), and are not lost
    send({ type: 'cancelled', step: total, checkpoint: null, message: 'cancelled (CLI words)' });
    expect(page.monitor.points.map((p) => p.step)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(page.monitor.status).toBe('cancelled');
  });
});
