import { describe, expect, it } from 'vitest';
import { formatValue, pointCount } from './series.js';

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
});
