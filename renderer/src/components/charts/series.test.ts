import { describe, expect, it } from 'vitest';
import { formatValue, pointCount, settledRange } from './series.js';

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
});
