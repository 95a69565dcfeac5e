// When a page following a run redraws what the run said: the events wait in
// the page's queue and are applied together at the next animation frame
// (requestAnimationFrame), so the charts and figures are drawn at most once
// per frame, just before the browser paints, never between two frames.
//
// Not at every frame: a chart update costs time in proportion to its points
// (chart.js redraws the whole line), and a run on the demo model sends ~175
// step events a second on one core. Redrawing at each of 60 frames a second
// took ~2.9 s of CPU for 5,000 such events (1,714 updates of each chart),
// waiting REDRAW_INTERVAL_MS first ~0.5 s (245 updates; train-redraw.bench.ts):
// time the training process on the same cores needs more, and ten redraws a
// second look just as live.
//
// A hidden window paints no frames, and requestAnimationFrame does not call
// back there: FRAME_WAIT_LIMIT_MS later the flush comes from a timer instead,
// so a hidden page keeps applying its events (the page's queue has a limit
// of its own too: train-page.svelte.ts).

import type { RunEvent } from '../../../electron/api/contract.js';

/**
 * Events that change what a page offers (its controls, the ending's words
 * and way on): applied at once, with every step queued before them, so an
 * ended run never shows a last step older than its end.
 */
export const SHOWN_AT_ONCE: ReadonlySet<RunEvent['type']> = new Set(['started', 'paused', 'resumed', 'finished', 'cancelled', 'failed']);

/** Runs `flush` once, later; the page's events wait for it in a queue (a test passes one it drives by hand). */
export type FlushScheduler = (flush: () => void) => void;

/** How long the first event of a burst waits before the frame that draws it (ten redraws a second at most). */
export const REDRAW_INTERVAL_MS = 100;
/** How long to wait for a frame before flushing without one (a hidden window has none). */
export const FRAME_WAIT_LIMIT_MS = 250;

/** The browser's animation frames and timers, as the scheduler uses them (a test gives its own). */
export interface FrameClock {
  /** calls `run` before the next paint (later, never at once); returns what cancels it; null where there are no animation frames */
  requestFrame: ((run: () => void) => () => void) | null;
  /** calls `run` after `ms` (later, never at once); returns what cancels it */
  after(ms: number, run: () => void): () => void;
}

function browserClock(): FrameClock {
  const raf = typeof globalThis.requestAnimationFrame === 'function' ? globalThis.requestAnimationFrame.bind(globalThis) : null;
  return {
    requestFrame: raf === null ? null : (run) => {
      const id = raf(() => run());
      return () => globalThis.cancelAnimationFrame(id);
    },
    after(ms, run) {
      const id = setTimeout(run, ms);
      return () => clearTimeout(id);
    },
  };
}

/**
 * A scheduler that flushes at the first animation frame REDRAW_INTERVAL_MS
 * after it is asked, or FRAME_WAIT_LIMIT_MS after that when no frame comes;
 * once either way.
 */
export function frameScheduler(clock: FrameClock = browserClock()): FlushScheduler {
  return (flush) => {
    clock.after(REDRAW_INTERVAL_MS, () => {
      const frameOf = clock.requestFrame;
      if (frameOf === null) {
        flush();
        return;
      }
      let done = false;
      const once = () => {
        if (done) return;
        done = true;
        cancelFrame();
        cancelTimer();
        flush();
      };
      const cancelFrame = frameOf(once);
      const cancelTimer = clock.after(FRAME_WAIT_LIMIT_MS, once);
    });
  };
}

/**
 * A page's live events waiting for its next redraw, in order: they are handed
 * to `take` together when the scheduler calls, and at once, with every one
 * before it, for an event SHOWN_AT_ONCE or when `limit` are waiting (a window
 * whose frames and timers are held back must not gather them without end).
 */
export class RunEventQueue<T> {
  private waiting: T[] = [];
  private scheduled = false;

  constructor(
    private readonly typeOf: (item: T) => RunEvent['type'],
    private readonly take: (items: T[]) => void,
    private readonly schedule: FlushScheduler,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {}

  push(item: T): void {
    this.waiting.push(item);
    if (SHOWN_AT_ONCE.has(this.typeOf(item)) || this.waiting.length >= this.limit) {
      this.flush();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Hands what is waiting to `take` now (nothing: no call). */
  flush(): void {
    if (this.waiting.length === 0) return;
    const items = this.waiting;
    this.waiting = [];
    this.take(items);
  }

  /** Drops what is waiting (events of a run the page no longer follows). */
  clear(): void {
    this.waiting = [];
  }
}
