// When the Train page draws its queued events (frameScheduler): at the first
// animation frame REDRAW_INTERVAL_MS after it asks, or without one once
// FRAME_WAIT_LIMIT_MS have passed (a hidden window gives none); once either
// way. The clock is the test's, moved by hand: nothing waits on real time.
import { describe, expect, it } from 'vitest';

import { FRAME_WAIT_LIMIT_MS, REDRAW_INTERVAL_MS, frameScheduler, type FrameClock } from './run-monitor-frames.js';

/** A clock whose time and frames move only when the test says. */
function handClock(withFrames = true) {
  let now = 0;
  const timers: { at: number; run: () => void; live: boolean }[] = [];
  const frames: { run: () => void; live: boolean }[] = [];
  const clock: FrameClock = {
    requestFrame: withFrames
      ? (run) => {
          const f = { run, live: true };
          frames.push(f);
          return () => void (f.live = false);
        }
      : null,
    after(ms, run) {
      const t = { at: now + ms, run, live: true };
      timers.push(t);
      return () => void (t.live = false);
    },
  };
  return {
    clock,
    /** moves time on by `ms`, running the timers that come due, in order */
    advance(ms: number): void {
      const until = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        now = due.at;
        due.live = false;
        due.run();
      }
      now = until;
    },
    /** the browser paints: the frame callbacks asked for until now run */
    paint(): void {
      for (const f of frames.splice(0)) if (f.live) f.run();
    },
    /** timers and frame requests not yet run nor cancelled */
    pending: () => ({ timers: timers.filter((t) => t.live).length, frames: frames.filter((f) => f.live).length }),
  };
}

describe('frameScheduler', () => {
  it('flushes at the first frame REDRAW_INTERVAL_MS after it is asked, once', () => {
    const c = handClock();
    let flushes = 0;
    frameScheduler(c.clock)(() => flushes++);
    c.paint(); // a frame before the interval is over: not yet
    c.advance(REDRAW_INTERVAL_MS - 1);
    c.paint();
    expect(flushes).toBe(0);
    c.advance(1);
    expect(flushes).toBe(0); // the interval is over: it waits for the frame
    expect(c.pending()).toEqual({ timers: 1, frames: 1 });
    c.paint();
    expect(flushes).toBe(1);
    // the timer that would have flushed without a frame was cancelled
    expect(c.pending()).toEqual({ timers: 0, frames: 0 });
    c.advance(10 * FRAME_WAIT_LIMIT_MS);
    c.paint();
    expect(flushes).toBe(1);
  });

  it('with no frame (a hidden window), flushes FRAME_WAIT_LIMIT_MS later from a timer, and a late frame does not flush again', () => {
    const c = handClock();
    let flushes = 0;
    frameScheduler(c.clock)(() => flushes++);
    c.advance(REDRAW_INTERVAL_MS + FRAME_WAIT_LIMIT_MS - 1);
    expect(flushes).toBe(0);
    c.advance(1);
    expect(flushes).toBe(1);
    expect(c.pending()).toEqual({ timers: 0, frames: 0 }); // the frame request was cancelled
    c.paint();
    expect(flushes).toBe(1);
  });

  it('where there are no animation frames at all, flushes when the interval is over', () => {
    const c = handClock(false);
    let flushes = 0;
    frameScheduler(c.clock)(() => flushes++);
    c.advance(REDRAW_INTERVAL_MS - 1);
    expect(flushes).toBe(0);
    c.advance(1);
    expect(flushes).toBe(1);
    expect(c.pending()).toEqual({ timers: 0, frames: 0 });
  });

  it('each request is its own: two asked apart flush apart, each once', () => {
    const c = handClock();
    const flushed: string[] = [];
    const schedule = frameScheduler(c.clock);
    schedule(() => flushed.push('first'));
    c.advance(REDRAW_INTERVAL_MS);
    c.paint();
    schedule(() => flushed.push('second'));
    c.paint();
    expect(flushed).toEqual(['first']);
    c.advance(REDRAW_INTERVAL_MS);
    c.paint();
    c.advance(FRAME_WAIT_LIMIT_MS);
    expect(flushed).toEqual(['first', 'second']);
  });
});
