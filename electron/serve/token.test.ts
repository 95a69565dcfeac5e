import { describe, expect, it } from 'vitest';

import { isLoopbackHost } from './loopback.js';
import { parseClientFrame } from './frames.js';
import { newToken, tokenMatches } from './token.js';

describe('token', () => {
  it('is 32 random bytes in hex, different every time', () => {
    const a = newToken();
    const b = newToken();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
  });

  it('matches only itself', () => {
    const t = newToken();
    expect(tokenMatches(t, t)).toBe(true);
    expect(tokenMatches(t, t.slice(0, -1))).toBe(false);
    expect(tokenMatches(t, t + '0')).toBe(false);
    expect(tokenMatches(t, t.toUpperCase())).toBe(false);
    expect(tokenMatches(t, '')).toBe(false);
    expect(tokenMatches(t, null)).toBe(false);
    expect(tokenMatches(t, undefined)).toBe(false);
  });
});

describe('isLoopbackHost', () => {
  it('tells this-machine addresses from network ones', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.5', 'box.example', '10.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('parseClientFrame', () => {
  it('reads a call', () => {
    expect(parseClientFrame('{"id":3,"method":"machine","request":{}}')).toEqual({ kind: 'call', id: 3, method: 'machine', request: {} });
  });
  it('rejects a frame with an id but no method under that id', () => {
    expect(parseClientFrame('{"id":4}')).toMatchObject({ kind: 'reject', id: 4, error: { code: 'invalid', field: 'method' } });
  });
  it('calls frames it cannot answer violations', () => {
    for (const text of ['not json', '[1,2]', 'null', '{"method":"machine"}', '{"id":"1","method":"machine"}', '{"id":1.5,"method":"machine"}']) {
      expect(parseClientFrame(text).kind, text).toBe('violation');
    }
  });
});
