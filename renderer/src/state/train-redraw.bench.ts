// How much a fast run costs the Train page: 5,000 step events arriving at
// ~175 a second (the demo model on one core), one message at a time, into a
// TrainPage whose monitor feeds the page's two charts (loss and learning
// rate, real LineCharts: chart.js on jsdom's canvas stand-in, so the drawing
// itself is not counted). Time is virtual: the events, the 60 Hz frames and
// the timers come in the order their times give, and what is measured is the
// CPU time of applying the events and redrawing, with the number of chart
// updates. Four ways to redraw:
//   per step event       a redraw for every message
//   timer 100 ms         the queue flushed 100 ms after its first event (before this change)
//   every frame          the queue flushed at the next animation frame
//   frame after 100 ms   frameScheduler (run-monitor-frames.ts): the next frame 100 ms after its first event
// Not part of the test suite (no timed assertion anywhere): `npm run bench:redraw`
// (vitest bench; its figures to bench/results/redraw.json, the per-event way the reference).
import { Chart } from 'chart.js';
import { flushSync, mount, unmount } from 'svelte';
import { bench, describe } from 'vitest';

import type { RunEvent } from '../../../electron/api/contract.js';
import LineChart from '../components/charts/LineChart.svelte';
import { SERIES_COLORS } from '../components/charts/series.js';
import { frameScheduler, type FlushScheduler, type FrameClock } from './run-monitor-frames.js';
import { Studio } from './studio.svelte.js';
import cancelled from './testdata/run-events-cancelled.json';
import { scriptedTransport } from '../testing/scripted-transport.js';
import { TrainPage } from './train-page.svelte.js';

type StepEvent = Extract<RunEvent, { type: 'step' }>;
const template = (cancelled as RunEvent[]).find((e): e is StepEvent => e.type === 'step')!;
const EVENTS = 5000;
const STEPS_PER_SECOND = 175;
const FRAME_MS = 1000 / 60;

/** Virtual time: timers and 60 Hz frames that run as the run's events move the time on. */
function virtualTime() {
  let now = 0;
  let timers: { at: number; run: () => void; live: boolean }[] = [];
  let frames: { run: () => void; live: boolean }[] = [];
  const clock: FrameClock = {
    requestFrame(run) {
      const f = { run, live: true };
      frames.push(f);
      return () => void (f.live = false);
    },
    after(ms, run) {
      const t = { at: now + ms, run, live: true };
      timers.push(t);
      return () => void (t.live = false);
    },
  };
  /** runs what comes due up to `until` in time order, each followed by the page's effects */
  function advanceTo(until: number): void {
    for (;;) {
      const nextFrame = Math.floor(now / FRAME_MS + 1) * FRAME_MS;
      const timer = timers.filter((t) => t.live).sort((a, b) => a.at - b.at)[0];
      const frameDue = frames.some((f) => f.live) && nextFrame <= until && (!timer || nextFrame <= timer.at);
      if (frameDue) {
        now = nextFrame;
        const due = frames;
        frames = [];
        for (const f of due) if (f.live) f.run();
      } else if (timer && timer.at <= until) {
        now = timer.at;
        timer.live = false;
        timer.run();
      } else break;
      timers = timers.filter((t) => t.live);
      flushSync();
    }
    now = until;
  }
  return { clock, advanceTo };
}

async function measure(way: string, scheduler: (clock: FrameClock) => FlushScheduler): Promise<void> {
  const { api, send } = scriptedTransport();
  const time = virtualTime();
  const page = new TrainPage(new Studio(), api, scheduler(time.clock));
  const off = page.subscribe();
  await page.follow('bench', '/bench');
  const target = document.createElement('div');
  document.body.append(target);
  // the Train page's two charts, with its series
  const charts = [
    mount(LineChart, { target, props: { get series() { return [{ label: 'training loss', color: SERIES_COLORS.loss, points: page.monitor.points.map((p) => ({ x: p.step, y: p.loss })) }]; }, title: 'Loss', yLabel: 'loss', testid: 'loss-chart', settle: true } }),
    mount(LineChart, { target, props: { get series() { return [{ label: 'learning rate', color: SERIES_COLORS.lr, points: page.monitor.points.map((p) => ({ x: p.step, y: p.lr })) }]; }, title: 'Learning rate', yLabel: 'learning rate', testid: 'lr-chart' } }),
  ];
  flushSync();
  let updates = 0;
  for (const canvas of target.querySelectorAll('canvas')) {
    const chart = Chart.getChart(canvas)!;
    const update = chart.update.bind(chart);
    chart.update = (mode) => {
      updates++;
      update(mode);
    };
  }
  const start = performance.now();
  for (let n = 1; n <= EVENTS; n++) {
    time.advanceTo((n * 1000) / STEPS_PER_SECOND);
    const event: StepEvent = { ...template, step: n, totalSteps: EVENTS, loss: 10 - n / 1000, lr: 2e-4 * (1 - n / EVENTS) };
    send({ type: 'run', runId: 'bench', runDir: '/bench', event });
    flushSync(); // the page's effects after each message
  }
  time.advanceTo(((EVENTS + 1) * 1000) / STEPS_PER_SECOND + 1000);
  const ms = performance.now() - start;
  if (page.monitor.points.length !== EVENTS) throw new Error(`${way}: ${page.monitor.points.length} points of ${EVENTS}`);
  console.log(`${way}: ${EVENTS} step events applied and drawn in ${ms.toFixed(0)} ms of CPU, ${updates / 2} updates of each chart`);
  off();
  charts.forEach((c) => void unmount(c));
  target.remove();
}

const once = { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 };

describe(`the Train page, ${EVENTS} step events at ${STEPS_PER_SECOND} a second`, () => {
  bench('per step event', () => measure('per step event', () => (flush) => flush()), once);
  bench('timer 100 ms', () => measure('timer 100 ms (before)', (clock) => (flush) => void clock.after(100, flush)), once);
  bench('every frame', () => measure('every frame', (clock) => (flush) => void clock.requestFrame!(flush)), once);
  bench('frame after 100 ms', () => measure('frame after 100 ms (frameScheduler)', (clock) => frameScheduler(clock)), once);
});
