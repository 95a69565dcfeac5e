import { describe, expect, it } from 'vitest';
import { formatValue, lowestPoint, pointCount, settledRange, yLimits } from './series.js';

describe('chart text', () => {
  it('writes learning rates in scientific notation and losses plainly', () => {
    expect(formatValue(0.0002)).toBe('2.00e−4');
    expect(formatValue(0.000033333333333333335)).toBe('3.33e−5');
    expect(formatValue(12.967843019425104)).toBe('12.97');
    expect(formatValue(0.5)).toBe('0.5');
    expect(formatValue(0)).toBe('0');
    expect(formatValue(Number.NaN)).toBe('—');
  });
  it('counts the points of all series', () => {
    expect(pointCount([{ label: 'a', color: '#000', points: [{ x: 1, y: 1 }, { x: 2, y: 1 }] }, { label: 'b', color: '#000', points: [{ x: 2, y: 1 }] }])).toBe(3);
    expect(pointCount([])).toBe(0);
  });
  it('settledRange leaves out the start only when it squeezes the rest', () => {
    const line = (ys: number[]) => [{ label: 'l', color: '#000', points: ys.map((y, i) => ({ x: i + 1, y })) }];
    // 30 points: the first 3 (a tenth) are the spike
    const spiky = line([10, 8, 6, ...Array.from({ length: 27 }, (_, i) => 2 - i / 26)]);
    const r = settledRange(spiky)!;
    expect(r.min).toBeCloseTo(1 - 0.05, 12);
    expect(r.max).toBeCloseTo(2 + 0.05, 12);
    // the same start within twice the rest's span: no clipping
    expect(settledRange(line([2.9, 2.5, 2.2, ...Array.from({ length: 27 }, (_, i) => 2 - i / 26)]))).toBeNull();
    // too few points
    expect(settledRange(line([10, 2, 1]))).toBeNull();
    // a second series (eval loss) after the start widens the range
    const withEval = [...spiky, { label: 'e', color: '#f00', points: [{ x: 20, y: 2.5 }] }];
    expect(settledRange(withEval)!.max).toBeCloseTo(2.5 + 0.05 * 1.5, 12);
  });
  it('yLimits never starts a non-negative quantity below 0, unless a point is below it', () => {
    const line = (ys: number[]) => [{ label: 'l', color: '#000', points: ys.map((y, i) => ({ x: i + 1, y })) }];
    const loss = line([2.3, 1, 0.01]);
    expect(lowestPoint(loss)).toBe(0.01);
    expect(lowestPoint([])).toBe(Infinity);
    // a settled range whose margin reaches below 0
    expect(yLimits(loss, { min: 0, max: 3 }, { min: -0.1, max: 2.4 }, true)).toEqual({ min: 0, max: 2.4 });
    // chart.js's own limits (a flat 0 padded to -1 .. 1)
    expect(yLimits(line([0, 0]), { min: -1, max: 1 }, null, true)).toEqual({ min: 0, max: 1 });
    // above 0: left as they are
    expect(yLimits(loss, { min: 0.01, max: 2.3 }, null, true)).toEqual({ min: 0.01, max: 2.3 });
    // a quantity that can be negative, or a point below 0: nothing drawn is cut off
    expect(yLimits(loss, { min: 0, max: 3 }, { min: -0.1, max: 2.4 }, false)).toEqual({ min: -0.1, max: 2.4 });
    expect(yLimits(line([1, -0.5]), { min: -0.6, max: 1 }, null, true)).toEqual({ min: -0.6, max: 1 });
  });
});
