// @vitest-environment node
import { describe, expect, it } from 'vitest';

import { ApiError, type ApiEvent, type ApiResult, type PreloadBridge } from '../../../electron/api/contract.js';
import { createIpcTransport } from './ipc.js';
import { unwrap } from './unwrap.js';

describe('unwrap', () => {
  it('returns the value of an ok result', () => {
    expect(unwrap<'recent'>({ ok: true, value: { models: ['/m'], datasets: [] } })).toEqual({ models: ['/m'], datasets: [] });
  });
  it('throws an ApiError carrying the body of a failed one', () => {
    const body = { code: 'forbidden' as const, field: 'path', message: '/etc is outside the folders this server may use' };
    expect(() => unwrap({ ok: false, error: body })).toThrow(ApiError);
    try {
      unwrap({ ok: false, error: body });
    } catch (e) {
      expect((e as ApiError).body).toEqual(body);
      expect((e as ApiError).message).toBe(body.message);
    }
  });
});

describe('the IPC transport', () => {
  // The preload's bridge is a plain object with two functions; this one
  // answers as the main process would (ApiResult) so unwrapping is exercised.
  it('passes method and request through and unwraps both outcomes', async () => {
    const calls: [string, unknown][] = [];
    const listeners = new Set<(e: ApiEvent) => void>();
    const bridge: PreloadBridge = {
      async call(method, request) {
        calls.push([method, request]);
        return method === 'recent'
          ? ({ ok: true, value: { models: [], datasets: ['/d.jsonl'] } } as ApiResult<'recent'>)
          : { ok: false, error: { code: 'failed', message: 'no' } };
      },
      onEvent(l) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    };
    const t = createIpcTransport(bridge);
    expect((await t.call('recent', {})).datasets).toEqual(['/d.jsonl']);
    await expect(t.call('machine', {})).rejects.toMatchObject({ name: 'ApiError', body: { code: 'failed', message: 'no' } });
    expect(calls).toEqual([
      ['recent', {}],
      ['machine', {}],
    ]);
    const got: ApiEvent[] = [];
    const off = t.onEvent((e) => got.push(e));
    for (const l of listeners) l({ type: 'exportLog', out: '/o', line: 'x' });
    off();
    expect(listeners.size).toBe(0);
    expect(got).toHaveLength(1);
  });
});
