// @vitest-environment node
import { describe, expect, it } from 'vitest';

import type { DirEntry } from '../../../electron/api/contract.js';
import { visibleBins } from './histogram.js';
import { barScale } from './methods.js';
import { crumbs, parentOf, sortEntries } from './paths.js';
import { isSpecialPiece, visiblePiece } from './tokens.js';

describe('file browser paths', () => {
  it('splits a POSIX path into crumbs that each open their folder', () => {
    expect(crumbs('/work/main/resources')).toEqual([
      { name: '/', path: '/' },
      { name: 'work', path: '/work' },
      { name: 'main', path: '/work/main' },
      { name: 'resources', path: '/work/main/resources' },
    ]);
    expect(crumbs('/')).toEqual([{ name: '/', path: '/' }]);
    expect(crumbs('/a//b/')).toEqual([
      { name: '/', path: '/' },
      { name: 'a', path: '/a' },
      { name: 'b', path: '/a/b' },
    ]);
  });
  it('keeps Windows drives and separators', () => {
    expect(crumbs('C:\\Users\\me')).toEqual([
      { name: 'C:\\', path: 'C:\\' },
      { name: 'Users', path: 'C:\\Users' },
      { name: 'me', path: 'C:\\Users\\me' },
    ]);
    expect(parentOf('C:\\Users\\me\\data.jsonl')).toBe('C:\\Users\\me');
  });
  it('finds the folder holding a file', () => {
    expect(parentOf('/data/set.jsonl')).toBe('/data');
    expect(parentOf('/set.jsonl')).toBe('/');
    expect(parentOf('/')).toBeNull();
  });
  it('lists folders first, then files, by name with numbers in order', () => {
    const e = (name: string, kind: DirEntry['kind']): DirEntry => ({ name, path: `/x/${name}`, kind, bytes: 0 });
    const sorted = sortEntries([e('b.jsonl', 'file'), e('run-10', 'folder'), e('A.csv', 'file'), e('run-9', 'folder'), e('model', 'folder')]);
    expect(sorted.map((x) => x.name)).toEqual(['model', 'run-9', 'run-10', 'A.csv', 'b.jsonl']);
  });
});

describe('histogram bins', () => {
  const bins = (counts: number[]) => {
    const edges = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
    let min = 1;
    const out = edges.map((max, i) => {
      const b = { min, max, count: counts[i] ?? 0 };
      min = max + 1;
      return b;
    });
    out.push({ min, max: null as unknown as number, count: counts[edges.length] ?? 0 });
    return out;
  };
  it('runs up to the bin of the sequence length when the rows are shorter', () => {
    const shown = visibleBins(bins([0, 111]), 256);
    expect(shown.map((b) => b.min)).toEqual([1, 17, 33, 65, 129]);
    expect(shown.map((b) => b.count)).toEqual([0, 111, 0, 0, 0]);
  });
  it('runs up to the longest row when rows exceed the sequence length', () => {
    const shown = visibleBins(bins([0, 5, 0, 0, 0, 0, 2]), 128);
    expect(shown).toHaveLength(7);
    expect(shown[6]).toEqual({ min: 513, max: 1024, count: 2 });
  });
  it('includes the open-ended last bin and shows nothing for no rows', () => {
    expect(visibleBins(bins([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]), 64).at(-1)?.count).toBe(4);
    expect(visibleBins(bins([]), 256)).toEqual([]);
  });
});

describe('memory bar scale', () => {
  it('draws to the largest estimate so rows compare, whatever the RAM', () => {
    expect(barScale([40, 19, 12], 24_000)).toBe(40);
    expect(barScale([40, 19, 12], 30)).toBe(40);
    expect(barScale([], 24_000)).toBe(24_000);
  });
});

describe('token pieces', () => {
  it('recognises special tokens as tokenizers spell them', () => {
    for (const p of ['<|begin_of_text|>', '<|eot_id|>', '<s>', '</s>', '<unk>', '[INST]', '[/INST]']) expect(isSpecialPiece(p)).toBe(true);
    for (const p of ['<', 'hello', ' <b>', '<|', '[inst]']) expect(isSpecialPiece(p)).toBe(false);
  });
  it('makes newlines and tabs visible and keeps the line break', () => {
    expect(visiblePiece('\n')).toBe('↵\n');
    expect(visiblePiece('a\r\nb')).toBe('a↵\nb');
    expect(visiblePiece('\t')).toBe('⇥\t');
    expect(visiblePiece(' the')).toBe(' the');
  });
});
