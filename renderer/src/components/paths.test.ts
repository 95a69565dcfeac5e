// Path helpers of the in-page file browser.
import { describe, expect, it } from 'vitest';
import { crumbs, isAtOrBelow, parentOf } from './paths.js';

describe('isAtOrBelow', () => {
  it('is true for the folder itself and what is inside it, in either separator', () => {
    expect(isAtOrBelow('/a/b', '/a/b')).toBe(true);
    expect(isAtOrBelow('/a/b/', '/a/b')).toBe(true);
    expect(isAtOrBelow('/a/b/c', '/a/b')).toBe(true);
    expect(isAtOrBelow('/a/b/c', '/a/b/')).toBe(true);
    expect(isAtOrBelow('C:\\a\\b\\c', 'C:\\a\\b')).toBe(true);
    expect(isAtOrBelow('/anything', '/')).toBe(true);
  });
  it('is false for a sibling that shares a prefix, and for a folder above', () => {
    expect(isAtOrBelow('/a/bc', '/a/b')).toBe(false);
    expect(isAtOrBelow('/a', '/a/b')).toBe(false);
    expect(isAtOrBelow('C:\\a\\bc', 'C:\\a\\b')).toBe(false);
  });
});

describe('crumbs and parentOf', () => {
  it('split a path into its folders', () => {
    expect(crumbs('/tmp/w').map((c) => c.path)).toEqual(['/', '/tmp', '/tmp/w']);
    expect(parentOf('/tmp/w/x.jsonl')).toBe('/tmp/w');
    expect(parentOf('/')).toBeNull();
  });
});
