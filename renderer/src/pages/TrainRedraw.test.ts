// The Train page under a fast run: the step events between two frames are
// drawn together at the frame, once per chart (loss and learning rate), every
// point in order, and the page's figures with them; the run's ending is drawn
// at once, with the steps that came just before it, frame or no frame. The
// page's frames are the test's, driven by hand (the `redraw` prop); the
// events are the service's shape, sent as the service would send them.
import { Chart } from 'chart.js';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';

import type { RunEvent } from '../../../electron/api/contract.js';
import type { FlushScheduler } from '../state/run-monitor-frames.js';
import { Studio } from '../state/studio.svelte.js';
import cancelled from '../state/testdata/run-events-cancelled.json';
import { byId } from '../testing/dom-waits.js';
import { eventTap } from '../testing/event-tap.js';
import { pageHarness } from '../testing/page-harness.js';
import { wire } from '../testing/service-bridge.js';

/** sends what the service would, to the page's listeners */
const tap = eventTap();
const harness = pageHarness<{ studio: Studio; redraw: FlushScheduler }>({
  homePrefix: 'peft-studio-train-redraw-',
  allowedRoots: null,
  load: () => import('./Train.svelte'),
  bridge: tap.bridge,
});

type StepEvent = Extract<RunEvent, { type: 'step' }>;
const CANCELLED = cancelled as RunEvent[];
const started = CANCELLED[0] as Extract<RunEvent, { type: 'started' }>;
const template = CANCELLED.find((e): e is StepEvent => e.type === 'step')!;
const RUN_ID = 'redraw-session';
const BURST = 300;
const TOTAL = BURST + 3;
const lossAt = (n: number) => 10 - n / 1000;
const lrAt = (n: number) => 2e-4 * (1 - n / TOTAL);

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? '';
const chartOf = (root: HTMLElement, id: string) => Chart.getChart(byId(root, id)!.querySelector('canvas')!)!;
const drawn = (chart: Chart) => chart.data.datasets[0].data as { x: number; y: number }[];

describe('the Train page under a fast run', () => {
  it('draws the steps between two frames in one update per chart at the frame; the ending at once, with the steps before it', () => {
    const runDir = join(harness.home, 'fast-run');
    const studio = new Studio();
    studio.runDir = runDir;
    studio.runId = RUN_ID;
    const frames: (() => void)[] = [];
    const root = harness.mount({ studio, redraw: (flush) => void frames.push(flush) });
    flushSync(); // mounted: it listens for the run's events and follows the run
    const send = (event: RunEvent) => {
      tap.send(wire({ type: 'run', runId: RUN_ID, runDir, event }));
      flushSync(); // what the page would draw between two messages
    };
    const step = (n: number): StepEvent => ({ ...template, step: n, totalSteps: TOTAL, loss: lossAt(n), lr: lrAt(n) });

    send({ ...started, runDir, totalSteps: TOTAL });
    expect(byId(root, 'run-status')!.dataset.status).toBe('running'); // a start is shown at once
    const loss = chartOf(root, 'loss-chart');
    const lr = chartOf(root, 'lr-chart');
    const lossUpdates = vi.spyOn(loss, 'update');
    const lrUpdates = vi.spyOn(lr, 'update');

    for (let n = 1; n <= BURST; n++) send(step(n));
    expect(frames).toHaveLength(1); // one frame asked for the whole burst
    expect(lossUpdates).not.toHaveBeenCalled();
    expect(lrUpdates).not.toHaveBeenCalled();
    expect(text(root, 'progress-text')).toBe(`step 0 of ${TOTAL} (0%)`);

    frames.shift()!();
    flushSync();
    expect(lossUpdates).toHaveBeenCalledTimes(1);
    expect(lrUpdates).toHaveBeenCalledTimes(1);
    const steps = Array.from({ length: BURST }, (_, i) => i + 1);
    expect(drawn(loss)).toEqual(steps.map((n) => ({ x: n, y: lossAt(n) })));
    expect(drawn(lr)).toEqual(steps.map((n) => ({ x: n, y: lrAt(n) })));
    expect(byId(root, 'loss-chart')!.dataset.points).toBe(String(BURST));
    expect(text(root, 'progress-text')).toBe(`step ${BURST} of ${TOTAL} (${Math.floor((BURST / TOTAL) * 1000) / 10}%)`);
    expect(text(root, 'latest-loss')).toBe(lossAt(BURST).toFixed(4));

    // the last steps, then the ending, before any frame: all of it is on the page now
    for (let n = BURST + 1; n <= TOTAL; n++) send(step(n));
    expect(lossUpdates).toHaveBeenCalledTimes(1);
    send({ type: 'finished', summary: { out: runDir, method: 'lora', steps: TOTAL, train_examples: 99, eval_examples: 12, final_loss: lossAt(TOTAL), final_eval_loss: null, elapsed_s: 2 } });
    expect(byId(root, 'run-status')!.dataset.status).toBe('finished');
    expect(lossUpdates).toHaveBeenCalledTimes(2);
    expect(lrUpdates).toHaveBeenCalledTimes(2);
    expect(drawn(loss).map((p) => p.x)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    expect(drawn(lr)[TOTAL - 1]).toEqual({ x: TOTAL, y: lrAt(TOTAL) });
    expect(text(root, 'progress-text')).toBe(`step ${TOTAL} of ${TOTAL} (100%)`);
    expect(text(root, 'latest-loss')).toBe(lossAt(TOTAL).toFixed(4));
    expect(byId(root, 'go-export')).not.toBeNull();
  });
});
