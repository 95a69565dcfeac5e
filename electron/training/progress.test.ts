import { describe, expect, it } from 'vitest';
import { estimateRemaining, formatDuration, formatProgress, ProgressReporter } from './progress.js';

describe('progress', () => {
  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3600 + 120 + 5)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
  });

  it('estimates the remaining time from the mean step time', () => {
    expect(estimateRemaining(10, 40, 20)).toBe(60);
    expect(estimateRemaining(0, 40, 0)).toBeNaN();
  });

  it('prints a line with step, loss and ETA (one line per update off a terminal)', () => {
    const out: string[] = [];
    const r = new ProgressReporter({ write: (s: string) => out.push(s), isTTY: false }, 0);
    r.update({ step: 5, totalSteps: 10, loss: 1.23456, lr: 2e-4, tokensPerSecond: 1500, elapsedSeconds: 50 });
    expect(out).toEqual([formatProgress({ step: 5, totalSteps: 10, loss: 1.23456, lr: 2e-4, tokensPerSecond: 1500, elapsedSeconds: 50 }) + '\n']);
    expect(out[0]).toContain('step 5/10');
    expect(out[0]).toContain('loss 1.2346');
    expect(out[0]).toContain('ETA 50s');
  });
});
