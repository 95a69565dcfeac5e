// @vitest-environment node
import { describe, expect, it } from 'vitest';

import { countOf, formatBytes, formatCount, formatCountShort, formatDuration, formatPercent } from './format.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('formatBytes', () => {
  it('writes bytes below 1 KiB as whole bytes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1023)).toBe('1023 B');
  });
  it('uses binary units with one decimal', () => {
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(82 * KiB)).toBe('82.0 KiB');
    expect(formatBytes(19.2 * MiB)).toBe('19.2 MiB');
    expect(formatBytes(3 * GiB)).toBe('3.0 GiB');
    expect(formatBytes(22.94 * GiB)).toBe('22.9 GiB');
    expect(formatBytes(2.5 * 1024 * GiB)).toBe('2.5 TiB');
  });
  it('moves to the next unit when rounding would read 1024', () => {
    expect(formatBytes(1023.96 * KiB)).toBe('1.0 MiB');
    expect(formatBytes(1023.9 * KiB)).toBe('1023.9 KiB');
    expect(formatBytes(GiB - 1)).toBe('1.0 GiB');
  });
  it('keeps the sign of a difference and marks a non-number', () => {
    expect(formatBytes(-1.5 * MiB)).toBe('-1.5 MiB');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('formatCount', () => {
  it('groups thousands with commas', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1000)).toBe('1,000');
    expect(formatCount(1881408)).toBe('1,881,408');
    expect(formatCount(8030261248)).toBe('8,030,261,248');
    expect(formatCount(-20480)).toBe('-20,480');
  });
  it('rounds fractions to whole numbers', () => {
    expect(formatCount(25.5)).toBe('26');
  });
  it('shortens large counts for tight places', () => {
    expect(formatCountShort(9999)).toBe('9,999');
    expect(formatCountShort(20480)).toBe('20.5 K');
    expect(formatCountShort(1881408)).toBe('1.9 M');
    expect(formatCountShort(8030261248)).toBe('8.0 B');
  });
});

describe('formatPercent', () => {
  it('scales its precision with the size of the share', () => {
    expect(formatPercent(1881408, 1881408)).toBe('100%');
    expect(formatPercent(1, 8)).toBe('12.5%');
    expect(formatPercent(20480, 1881408)).toBe('1.09%');
    expect(formatPercent(3840, 1881408)).toBe('0.2%');
    expect(formatPercent(10240, 1881408)).toBe('0.54%');
    expect(formatPercent(4194304, 8030261248)).toBe('0.052%');
    expect(formatPercent(0, 5)).toBe('0%');
  });
  it('shows more than 100% as it is and refuses an empty whole', () => {
    expect(formatPercent(3, 2)).toBe('150.0%');
    expect(formatPercent(1, 0)).toBe('—');
  });
});

describe('formatDuration', () => {
  it('shows tenths under ten seconds, whole seconds under a minute', () => {
    expect(formatDuration(0)).toBe('0.0 s');
    expect(formatDuration(0.44)).toBe('0.4 s');
    expect(formatDuration(9.94)).toBe('9.9 s');
    expect(formatDuration(42.4)).toBe('42 s');
  });
  it('uses the two largest units beyond that', () => {
    expect(formatDuration(60)).toBe('1 min 00 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3599.4)).toBe('59 min 59 s');
    expect(formatDuration(3600)).toBe('1 h 00 min');
    expect(formatDuration(2 * 3600 + 7 * 60 + 20)).toBe('2 h 07 min');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3 d 04 h');
  });
  it('marks what is not a duration', () => {
    expect(formatDuration(-1)).toBe('—');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

describe('countOf', () => {
  it('says "1 row" and "2 rows", never "row(s)"', () => {
    expect(countOf(1, 'row')).toBe('1 row');
    expect(countOf(0, 'row')).toBe('0 rows');
    expect(countOf(2, 'step')).toBe('2 steps');
    expect(countOf(12674, 'token')).toBe('12,674 tokens');
  });
});
