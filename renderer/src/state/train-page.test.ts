// The Train page takes a fast run's events in bursts: a run on the demo model
// sends ~175 step events a second on one core, each its own IPC / WebSocket
// message, and one chart redraw per message blocked the page for seconds.
// Here 1000 step events arrive one message at a time (the page's effects run
// after each, as between two messages), and the loss chart, a real LineChart
// on the page's monitor, must draw all 1000 points in one update at the next
// frame; the run's ending is drawn at once, with the steps before it.
//
// The transport is scripted: the real service cannot send 1000 events at
// will; the end-to-end flow against it is in wizard-flow.test.ts.
import { Chart } from 'chart.js';
import { flushSync, mount, unmount } from 'svelte';
import { describe, expect, it, vi } from 'vitest';

import { ApiError, type ApiEvent, type ApiTransport, type RunEvent } from '../../../electron/api/contract.js';
import LineChart from '../components/charts/LineChart.svelte';
import { REFUSED_MESSAGE } from '../api/websocket.js';
import { Studio } from './studio.svelte.js';
import cancelled from './testdata/run-events-cancelled.json';
import { scriptedTransport } from '../testing/scripted-transport.js';
import { TrainPage } from './train-page.svelte.js';
import { readSnapshot, restoreSnapshot, saveSnapshot, snapshotOf } from './wizard-session.svelte.js';

type StepEvent = Extract<RunEvent, { type: 'step' }>;
const CANCELLED = cancelled as RunEvent[];
const template = CANCELLED.find((e): e is StepEvent => e.type === 'step')!;
const STEPS = 1000;
const RUN_ID = 'session-1';
const RUN_DIR = '/tmp/d2/burst';

describe('TrainPage under a flood of step events', () => {
  it('charts every one of 1000 steps in one chart update at the next frame, not one per event', async () => {
    const { api, send } = scriptedTransport();
    const studio = new Studio();
    const scheduled: (() => void)[] = [];
    const page = new TrainPage(studio, api, (flush) => void scheduled.push(flush));
    const off = page.subscribe();
    await page.follow(RUN_ID, RUN_DIR);

    const target = document.createElement('div');
    document.body.append(target);
    const chartView = mount(LineChart, {
      target,
      props: {
        get series() {
          return [{ label: 'training loss', color: '#000', points: page.monitor.points.map((p) => ({ x: p.step, y: p.loss })) }];
        },
        title: 'Loss',
        yLabel: 'loss',
        testid: 'loss-chart',
      },
    });
    flushSync();
    const chart = Chart.getChart(target.querySelector('canvas')!)!;
    const updates = vi.spyOn(chart, 'update');

    for (let step = 1; step <= STEPS; step++) {
      send({ type: 'run', runId: RUN_ID, runDir: RUN_DIR, event: { ...template, step, totalSteps: STEPS, loss: 10 - step / 1000 } });
      flushSync(); // what would redraw between two messages
    }
    // another run's events are not this page's
    send({ type: 'run', runId: 'other', runDir: '/tmp/other', event: { ...template, step: 5000 } });
    expect(scheduled).toHaveLength(1); // one flush pending for the whole burst
    expect(updates).not.toHaveBeenCalled();

    scheduled.shift()!();
    flushSync();
    const drawn = chart.data.datasets[0].data as { x: number; y: number }[];
    expect(drawn).toHaveLength(STEPS);
    expect(drawn.map((p) => p.x)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(drawn[STEPS - 1]).toEqual({ x: STEPS, y: 10 - STEPS / 1000 });
    expect(target.querySelector('[data-testid="loss-chart"]')!.getAttribute('data-points')).toBe(String(STEPS));
    expect(updates).toHaveBeenCalledTimes(1);
    expect(page.monitor.step).toBe(STEPS);
    expect(page.monitor.status).toBe('running');

    // the next steps wait for the next frame, but the run's ending does not: it is drawn at once, with them
    const LAST = STEPS + 5;
    for (let step = STEPS + 1; step <= LAST; step++) {
      send({ type: 'run', runId: RUN_ID, runDir: RUN_DIR, event: { ...template, step, totalSteps: LAST, loss: 10 - step / 1000 } });
      flushSync();
    }
    expect(scheduled).toHaveLength(1);
    expect(updates).toHaveBeenCalledTimes(1);
    send({ type: 'run', runId: RUN_ID, runDir: RUN_DIR, event: { type: 'cancelled', step: LAST, checkpoint: `${RUN_DIR}/checkpoints/step-${LAST}`, message: 'cancelled (CLI words)' } });
    flushSync(); // no frame given
    expect(updates).toHaveBeenCalledTimes(2);
    expect((chart.data.datasets[0].data as { x: number }[]).map((p) => p.x)).toEqual(Array.from({ length: LAST }, (_, i) => i + 1));
    expect(page.monitor.status).toBe('cancelled');
    expect(page.monitor.step).toBe(LAST);
    expect(page.monitor.message).toBe(`Cancelled after step ${LAST} of ${LAST}; a checkpoint at step ${LAST} was saved — Resume continues from it.`);
    // the frame asked for those steps comes later and finds nothing left to draw
    scheduled.shift()!();
    flushSync();
    expect(updates).toHaveBeenCalledTimes(2);

    off();
    unmount(chartView);
    target.remove();
  });
});

describe('TrainPage after the connection comes back', () => {
  it('resync rebuilds the view from the run record: the end it missed shows', async () => {
    const s = CANCELLED.filter((e): e is StepEvent => e.type === 'step');
    const record = (status: 'running' | 'finished', upTo: number) => ({
      dir: RUN_DIR,
      entry: {
        dir: RUN_DIR, model: '/m', method: 'lora' as const, status, created: '', updated: '',
        steps_done: upTo, total_steps: 4, best_eval_loss: null, adapter: null, resumable: status !== 'finished', message: null,
      },
      config: {} as never,
      steps: s.slice(0, upTo).map((e) => ({ step: e.step, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond })),
      evals: [],
      runId: null,
    });
    // what the server's record says: first mid-run, then (after the blink) finished
    let history = record('running', 2);
    const calls: string[] = [];
    const api: ApiTransport = {
      call: (async (method: string) => {
        calls.push(method);
        return structuredClone(history);
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const page = new TrainPage(new Studio(), api, () => {});
    await page.follow(null, RUN_DIR);
    expect(page.monitor.step).toBe(2);
    expect(page.monitor.status).toBe('running');

    history = record('finished', 4); // the run ended while the socket was down: its events were lost
    await page.resync();
    expect(calls).toEqual(['runHistory', 'runHistory']);
    expect(page.monitor.status).toBe('finished');
    expect(page.monitor.step).toBe(4);
    expect(page.monitor.points.map((p) => p.step)).toEqual([1, 2, 3, 4]);
  });
});

describe('TrainPage while the connection is lost', () => {
  it('says so, turns the controls off with the reason, and rebuilds the view when it is back', async () => {
    let reads = 0;
    const api: ApiTransport = {
      call: (async (method: string) => {
        if (method !== 'runHistory') throw new Error(`unexpected ${method}`);
        reads++;
        return {
          dir: RUN_DIR, runId: RUN_ID, config: {} as never, steps: [], evals: [],
          entry: { dir: RUN_DIR, model: '/m', method: 'lora', status: 'running', created: '', updated: '', steps_done: 0, total_steps: 8, best_eval_loss: null, adapter: null, resumable: true, message: null },
        };
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const page = new TrainPage(new Studio(), api, () => {});
    await page.follow(RUN_ID, RUN_DIR);
    page.monitor.apply({ ...template, step: 4, totalSteps: 8 });
    // at mount, not yet connected (browser mode before the first socket): nothing was lost
    page.setConnection('closed');
    expect(page.connectionNotice).toBeNull();
    page.setConnection('connecting');
    expect(page.connectionNotice).toBeNull();
    page.setConnection('open');
    expect(reads).toBe(1);
    expect(page.connected).toBe(true);
    expect(page.connectionNotice).toBeNull();
    expect(page.controlsOffBecause).toBeNull();
    expect(page.announcement).toBe('Run training, 50% done.');

    page.setConnection('closed');
    expect(page.connected).toBe(false);
    expect(page.connectionNotice).toMatch(/^Not connected to PEFT Studio\. If it is still running, so is the run/);
    expect(page.controlsOffBecause).toBe('Pause and Cancel work again once this page is connected to PEFT Studio.');
    // the notice (role=alert) says it; the status announcement stays on the run, so only one speaks
    expect(page.announcement).toBe('Run training, 50% done.');
    page.setConnection('connecting'); // trying again: still lost
    expect(page.connectionNotice).not.toBeNull();
    expect(page.controlsOffBecause).not.toBeNull();

    page.setConnection('open');
    await new Promise((r) => setTimeout(r, 0));
    expect(reads).toBe(2); // the record read again: events sent meanwhile were lost
    expect(page.controlsOffBecause).toBeNull();

    // restarted with a new token: the way on, not "reconnecting"
    page.setConnection('refused');
    expect(page.connectionNotice).toBe(REFUSED_MESSAGE);
    expect(page.controlsOffBecause).toMatch(/open the address it printed/);
    for (const text of [page.connectionNotice, page.controlsOffBecause]) expect(text).not.toMatch(/pauseRun|cancelRun|code \d+|1006/);
  });
});

describe('TrainPage opened before it is connected', () => {
  it('reads the run record again once connected when the first read failed (not "starting…" for ever)', async () => {
    let connected = false;
    let reads = 0;
    const s = CANCELLED.filter((e): e is StepEvent => e.type === 'step');
    const api: ApiTransport = {
      call: (async (method: string) => {
        if (method !== 'runHistory') throw new Error(`unexpected ${method}`);
        reads++;
        if (!connected) throw new Error('No answer from PEFT Studio: the connection to it was lost.');
        return {
          dir: RUN_DIR, runId: RUN_ID, config: {} as never, evals: [],
          steps: s.slice(0, 3).map((e) => ({ step: e.step, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond })),
          entry: { dir: RUN_DIR, model: '/m', method: 'lora', status: 'running', created: '', updated: '', steps_done: 3, total_steps: 8, best_eval_loss: null, adapter: null, resumable: true, message: null },
        };
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const page = new TrainPage(new Studio(), api, () => {});
    page.setConnection('closed'); // at mount: not connected yet, nothing lost
    await page.follow(RUN_ID, RUN_DIR); // the read fails for want of a connection
    expect(reads).toBe(1);
    expect(page.monitor.status).toBe('waiting'); // "starting…"
    connected = true;
    page.setConnection('connecting');
    page.setConnection('open');
    await new Promise((r) => setTimeout(r, 0));
    expect(reads).toBe(2);
    expect(page.monitor.status).toBe('running');
    expect(page.monitor.step).toBe(3);
  });
});

describe('TrainPage announcements', () => {
  it('a failure is said once: by its alert, not by the status announcement too', () => {
    const page = new TrainPage(new Studio(), scriptedTransport().api, () => {});
    page.monitor.apply({ ...template, step: 2, totalSteps: 8 });
    expect(page.announcement).toBe('Run training, 25% done.');
    page.monitor.apply({ type: 'failed', kind: 'error', step: 2, message: 'The run stopped: out of memory.', resumable: false, checkpoint: null });
    expect(page.monitor.status).toBe('failed');
    expect(page.monitor.message).toBe('The run stopped: out of memory.');
    expect(page.announcement).toBe('');
  });
});

describe('TrainPage after a run that failed before it trained (its folder removed)', () => {
  const MESSAGE = '/data/task.jsonl: none of its 111 rows can be used (format: completion). First problems: …';
  const failedEvent: RunEvent = { type: 'failed', kind: 'error', step: null, message: MESSAGE, resumable: false, checkpoint: null };
  /** runHistory as the service answers it (electron/service/run-history.ts): starting while the run is live, then no run there */
  function serviceAnswers(): { api: ApiTransport; send: (e: ApiEvent) => void; end: () => void } {
    const listeners = new Set<(e: ApiEvent) => void>();
    let live = true;
    const api: ApiTransport = {
      call: (async (method: string) => {
        if (method !== 'runHistory') throw new Error(`unexpected ${method}`);
        if (live) throw new ApiError({ code: 'failed', message: `${RUN_DIR}: the run is starting; its record is written once it has read its data` });
        throw new ApiError({ code: 'invalid', field: 'runDir', message: `${RUN_DIR}: has no run.json, so it is not a run folder; choose the folder of a run` });
      }) as ApiTransport['call'],
      onEvent(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    return { api, send: (e) => listeners.forEach((l) => l(e)), end: () => (live = false) };
  }
  const settle = () => new Promise((r) => setTimeout(r, 0));

  it('watched as it fails: the failure stays shown, the folder that is gone is no longer the run', async () => {
    const { api, send, end } = serviceAnswers();
    const studio = new Studio();
    studio.runId = RUN_ID;
    studio.runDir = RUN_DIR;
    const page = new TrainPage(studio, api, () => {});
    const off = page.subscribe();
    await page.follow(RUN_ID, RUN_DIR);
    expect(page.monitor.status).toBe('waiting'); // starting: its record is not written yet
    expect(studio.runDir).toBe(RUN_DIR);
    end();
    send({ type: 'run', runId: RUN_ID, runDir: RUN_DIR, event: failedEvent });
    await settle();
    expect(studio.runDir).toBeNull();
    expect(studio.runId).toBeNull();
    expect(studio.reachable('export')).toBe(false);
    expect(page.failedBeforeTraining).toEqual({ runDir: RUN_DIR, message: MESSAGE });
    off();
  });

  it('left and opened again (or the tab reloaded): the failure, not "starting…" for ever', async () => {
    const { api, end } = serviceAnswers();
    end();
    const studio = new Studio();
    studio.runId = RUN_ID;
    studio.runDir = RUN_DIR;
    // heard by the session (keepSession) while the Train page was closed
    studio.noteRunEvent({ type: 'run', runId: RUN_ID, runDir: RUN_DIR, event: failedEvent });
    const page = new TrainPage(studio, api, () => {});
    await page.follow(RUN_ID, RUN_DIR);
    expect(studio.runDir).toBeNull();
    expect(page.failedBeforeTraining).toEqual({ runDir: RUN_DIR, message: MESSAGE });
    expect(page.historyError).toBeNull();

    // a reload keeps it: the snapshot holds it, the folder is not offered again
    const storage = new Map<string, string>();
    saveSnapshot({ setItem: (k, v) => storage.set(k, v) }, snapshotOf(studio));
    const restored = new Studio();
    await restoreSnapshot(restored, api, readSnapshot({ getItem: (k) => storage.get(k) ?? null })!);
    expect(restored.runDir).toBeNull();
    expect(new TrainPage(restored, api, () => {}).failedBeforeTraining).toEqual({ runDir: RUN_DIR, message: MESSAGE });

    // a folder followed before a run starts there holds no run either: with no failure heard, it stays the run
    const before = new Studio();
    before.runDir = RUN_DIR;
    const waiting = new TrainPage(before, api, () => {});
    await waiting.follow(null, RUN_DIR);
    expect(before.runDir).toBe(RUN_DIR);
    expect(waiting.failedBeforeTraining).toBeNull();
  });

  it('a lost connection is not a folder gone: the run stays, read again once connected', async () => {
    const api: ApiTransport = {
      call: (async () => {
        throw new ApiError({ code: 'failed', message: 'No answer from PEFT Studio: the connection to it was lost.' });
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const studio = new Studio();
    studio.runDir = RUN_DIR;
    const page = new TrainPage(studio, api, () => {});
    await page.follow(null, RUN_DIR);
    expect(studio.runDir).toBe(RUN_DIR);
    expect(page.failedBeforeTraining).toBeNull();
  });
});
