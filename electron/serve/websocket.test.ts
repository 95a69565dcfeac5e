// The API WebSocket with the real studio service: who may connect, what a
// call returns, and what malformed frames do (never a crash).
import { mkdirSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { defaultThreads } from '../system/machine.js';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { WS_PATH, type ServerFrame } from '../api/contract.js';
import { createStudioService, type StudioService } from '../service/service.js';
import { tokenCookieName } from './auth.js';
import { startServer, type RunningServer } from './server.js';
import { makeStaticFixture, type StaticFixture } from './testing/static-fixture.js';
import { call, closed, openSocket, sendAndWait, waitFor } from './testing/ws-client.js';
import { MAX_FRAME_BYTES } from './websocket.js';

process.env.PEFT_STUDIO_HOME = mkdtempSync(join(tmpdir(), 'peft-serve-home-'));

let fx: StaticFixture;
let service: StudioService;
let server: RunningServer;
let wsUrl: string;
let origin: string;

beforeAll(async () => {
  fx = makeStaticFixture();
  mkdirSync(join(fx.root, 'models'));
  service = createStudioService({ mode: 'browser', allowedRoots: [fx.root] });
  server = await startServer({ host: '127.0.0.1', port: 0, service, staticDir: fx.staticDir });
  wsUrl = `ws://127.0.0.1:${server.port}${WS_PATH}`;
  origin = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.close();
  await service?.close();
  fx?.cleanup();
});

async function connected() {
  const s = await openSocket(`${wsUrl}?token=${server.token}`, { Origin: origin });
  if (!('ws' in s)) throw new Error(`refused with ${s.status}`);
  return s;
}

describe('the API WebSocket', () => {
  it('refuses an upgrade without the token (401) or with a wrong one (403)', async () => {
    expect(await openSocket(wsUrl, { Origin: origin })).toEqual({ status: 401 });
    expect(await openSocket(`${wsUrl}?token=${'f'.repeat(64)}`, { Origin: origin })).toEqual({ status: 403 });
  });

  it('refuses the right token from another origin, or none (403)', async () => {
    const url = `${wsUrl}?token=${server.token}`;
    expect(await openSocket(url, { Origin: 'http://evil.example' })).toEqual({ status: 403 });
    expect(await openSocket(url, { Origin: `http://localhost:${server.port + 1}` })).toEqual({ status: 403 });
    expect(await openSocket(url, { Origin: 'null' })).toEqual({ status: 403 });
    expect(await openSocket(url)).toEqual({ status: 403 });
  });

  it('refuses other paths (404)', async () => {
    expect(await openSocket(`ws://127.0.0.1:${server.port}/other?token=${server.token}`, { Origin: origin })).toEqual({ status: 404 });
  });

  it('answers a call with the right token and origin: machine', async () => {
    const s = await connected();
    const result = await call(s, 1, 'machine', {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const machine = result.value as { cpuThreads: number; mode: string; totalMemoryBytes: number };
    // the threads a run may use: the CPUs of its affinity, within a container's CPU quota (system/machine.ts)
    expect(machine.cpuThreads).toBe(defaultThreads());
    expect(machine.cpuThreads).toBeGreaterThan(0);
    expect(machine.mode).toBe('browser');
    expect(machine.totalMemoryBytes).toBeGreaterThan(0);
    s.ws.close();
  });

  it('accepts the cookie in place of the query token', async () => {
    const s = await openSocket(wsUrl, { Origin: origin, Cookie: `${tokenCookieName(server.token)}=${server.token}` });
    if (!('ws' in s)) throw new Error(`refused with ${s.status}`);
    expect((await call(s, 5, 'machine', {})).ok).toBe(true);
    s.ws.close();
  });

  it('answers bad calls with an error and stays usable', async () => {
    const s = await connected();
    const noMethod = await sendAndWait(s, 2, '{"id":2}');
    expect(noMethod).toMatchObject({ ok: false, error: { code: 'invalid' } });
    const unknown = await call(s, 3, 'deleteEverything', {});
    expect(unknown).toMatchObject({ ok: false, error: { code: 'invalid' } });
    const badRequest = await call(s, 4, 'listDir', { path: 42 });
    expect(badRequest).toMatchObject({ ok: false, error: { code: 'invalid' } });
    expect((await call(s, 6, 'machine', {})).ok).toBe(true);
    s.ws.close();
  });

  it('closes with 1008 on a frame it cannot answer, and the server lives on', async () => {
    for (const text of ['this is not json', '{"method":"machine","request":{}}', '[1]']) {
      const s = await connected();
      const done = closed(s.ws);
      s.ws.send(text);
      expect((await done).code, text).toBe(1008);
    }
    const s = await connected();
    expect((await call(s, 7, 'machine', {})).ok).toBe(true);
    s.ws.close();
  });

  it('closes with 1009 on a frame over the size limit', async () => {
    const s = await connected();
    const done = closed(s.ws);
    s.ws.send(JSON.stringify({ id: 8, method: 'machine', request: { pad: 'x'.repeat(MAX_FRAME_BYTES) } }));
    expect((await done).code).toBe(1009);
  });

  it('lists --root and refuses paths outside it (forbidden)', async () => {
    const s = await connected();
    const top = await call(s, 10, 'listDir', { path: null });
    expect(top.ok).toBe(true);
    if (top.ok) {
      const value = top.value as { path: string; entries: { name: string; kind: string }[] };
      expect(realpathSync(value.path)).toBe(realpathSync(fx.root));
      expect(value.entries.map((e) => [e.name, e.kind])).toEqual([['models', 'folder']]);
    }
    const outside = await call(s, 11, 'listDir', { path: dirname(fx.root) });
    expect(outside).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const escape = await call(s, 12, 'listDir', { path: join(fx.root, '..') });
    expect(escape).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const model = await call(s, 13, 'inspectModel', { model: dirname(fx.secretFile) });
    expect(model).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    s.ws.close();
  });

  it('broadcasts the events of a run to every open socket', async () => {
    const a = await connected();
    const b = await connected();
    const demo = await call(a, 20, 'demoPaths', {});
    if (!demo.ok) throw new Error(JSON.stringify(demo.error));
    const paths = demo.value as { model: string; datasets: { name: string; path: string }[] };
    const started = await call(a, 21, 'startRun', {
      model: paths.model,
      data: paths.datasets.find((d) => d.name === 'task-train')!.path,
      method: 'lora',
      out: join(fx.root, 'run'),
      hyper: { steps: 2, threads: 1, batchSize: 2 },
    });
    if (!started.ok) throw new Error(JSON.stringify(started.error));
    const { runId, runDir } = started.value as { runId: string; runDir: string };
    expect(runDir).toBe(join(fx.root, 'run'));
    const runEvents = (frames: ServerFrame[]) =>
      frames.flatMap((f) => ('event' in f && f.event.type === 'run' && f.event.runId === runId ? [f.event.event] : []));
    const end = (frames: ServerFrame[]) => runEvents(frames).find((e) => e.type === 'finished' || e.type === 'failed' || e.type === 'cancelled');
    const [endA, endB] = await Promise.all([waitFor(() => end(a.frames), 60_000), waitFor(() => end(b.frames), 60_000)]);
    expect(endA.type, JSON.stringify(endA)).toBe('finished');
    expect(endB).toEqual(endA);
    // both saw the same stream, from 'started' through both steps to the end
    expect(runEvents(b.frames)).toEqual(runEvents(a.frames));
    expect(runEvents(a.frames)[0].type).toBe('started');
    expect(runEvents(a.frames).filter((e) => e.type === 'step').map((e) => (e as { step: number }).step)).toEqual([1, 2]);
    a.ws.close();
    b.ws.close();
  });
});

