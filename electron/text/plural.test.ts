import { describe, expect, it } from 'vitest';
import { countOf } from './plural.js';

describe('countOf', () => {
  it('uses the singular for exactly one and the plural for every other count', () => {
    expect(countOf(1, 'row')).toBe('1 row');
    expect(countOf(2, 'row')).toBe('2 rows');
    expect(countOf(0, 'row')).toBe('0 rows');
    expect(countOf(1.5, 'step')).toBe('1.5 steps');
  });
  it('pluralizes the last word of a multi-word noun', () => {
    expect(countOf(3, 'hardware thread')).toBe('3 hardware threads');
    expect(countOf(1, 'hardware thread')).toBe('1 hardware thread');
  });
  it('takes an irregular plural when given one', () => {
    expect(countOf(2, 'entry', 'entries')).toBe('2 entries');
    expect(countOf(1, 'entry', 'entries')).toBe('1 entry');
    expect(countOf(4, 'matrix', 'matrices')).toBe('4 matrices');
  });
  it('writes the number without thousands separators, as the messages always have', () => {
    expect(countOf(12674, 'token')).toBe('12674 tokens');
  });
});
