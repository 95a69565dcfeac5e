// @vitest-environment node
// The browser-mode transport against a real WebSocket server (the `ws`
// package), speaking the contract's frames.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';

import { ApiError, type ClientFrame, type ServerFrame } from '../../../electron/api/contract.js';
import { createWebSocketTransport, type ConnectionState, type SocketLike, type WebSocketTransport } from './websocket.js';

const servers: WebSocketServer[] = [];
const transports: WebSocketTransport[] = [];

afterEach(async () => {
  for (const t of transports.splice(0)) t.dispose();
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.terminate();
    await new Promise((r) => s.close(r));
  }
});

/** A server answering with `answer(frame)`; `undefined` means: do not answer. */
async function serve(answer: (frame: ClientFrame, socket: WebSocket) => ServerFrame | undefined, port = 0): Promise<{ server: WebSocketServer; url: string; seen: string[] }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port });
  servers.push(server);
  await once(server, 'listening');
  const seen: string[] = [];
  server.on('connection', (socket, req) => {
    seen.push(req.url ?? '');
    socket.on('message', (data) => {
      const reply = answer(JSON.parse(String(data)) as ClientFrame, socket);
      if (reply) socket.send(JSON.stringify(reply));
    });
  });
  const { port: p } = server.address() as AddressInfo;
  return { server, url: `ws://127.0.0.1:${p}/api?token=t0k`, seen };
}

function connect(url: string, extra: { initialDelayMs?: number; hint?: string } = {}): WebSocketTransport {
  const t = createWebSocketTransport({ url, createSocket: (u) => new WebSocket(u) as unknown as SocketLike, ...extra });
  transports.push(t);
  return t;
}

describe('the WebSocket transport', () => {
  it('round-trips a call: the frame carries method and request, the value comes back', async () => {
    const received: ClientFrame[] = [];
    const { url, seen } = await serve((frame) => {
      received.push(frame);
      return { id: frame.id, result: { ok: true, value: { path: '/models', parent: null, entries: [{ name: 'tiny', path: '/models/tiny', kind: 'folder', bytes: 0, isModel: true }] } } };
    });
    const t = connect(url);
    const listing = await t.call('listDir', { path: '/models' });
    expect(listing.entries[0].name).toBe('tiny');
    expect(listing.entries[0].isModel).toBe(true);
    expect(received).toEqual([{ id: 1, method: 'listDir', request: { path: '/models' } }]);
    expect(seen).toEqual(['/api?token=t0k']);
    expect(t.state).toBe('open');
  });

  it('matches answers to calls by id when they come back out of order', async () => {
    const held: { frame: ClientFrame; socket: WebSocket }[] = [];
    const { url } = await serve((frame, socket) => {
      held.push({ frame, socket });
      if (held.length === 2) {
        // answer the second call first
        for (const h of [held[1], held[0]]) {
          const value = { models: [`m${h.frame.id}`], datasets: [] };
          h.socket.send(JSON.stringify({ id: h.frame.id, result: { ok: true, value } } satisfies ServerFrame));
        }
      }
      return undefined;
    });
    const t = connect(url);
    const [a, b] = await Promise.all([t.call('recent', {}), t.call('recent', {})]);
    expect(a.models).toEqual(['m1']);
    expect(b.models).toEqual(['m2']);
  });

  it('turns an error result into an ApiError with its body and field', async () => {
    const { url } = await serve((frame) => ({
      id: frame.id,
      result: { ok: false, error: { code: 'invalid', field: 'model', message: '/x: no config.json in this folder' } },
    }));
    const t = connect(url);
    const error = await t.call('inspectModel', { model: '/x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toBe('/x: no config.json in this folder');
    expect((error as ApiError).body).toEqual({ code: 'invalid', field: 'model', message: '/x: no config.json in this folder' });
  });

  it('delivers pushed events to every listener until it unsubscribes', async () => {
    const { url, server } = await serve(() => undefined);
    const t = connect(url);
    const a: unknown[] = [];
    const b: unknown[] = [];
    const offA = t.onEvent((e) => a.push(e));
    t.onEvent((e) => b.push(e));
    await new Promise<void>((resolve) => t.onState((s) => s === 'open' && resolve()));
    const push = (line: string) => {
      for (const c of server.clients) c.send(JSON.stringify({ event: { type: 'exportLog', out: '/o', line } } satisfies ServerFrame));
    };
    push('one');
    await expect.poll(() => b.length).toBe(1);
    offA();
    push('two');
    await expect.poll(() => b.length).toBe(2);
    expect(a).toEqual([{ type: 'exportLog', out: '/o', line: 'one' }]);
  });

  it('rejects the calls still waiting when the socket closes, saying so', async () => {
    const { url, server } = await serve(() => undefined); // never answers
    const t = connect(url, { initialDelayMs: 10_000 });
    const waiting = t.call('startRun', { model: '/m', data: '/d.jsonl', method: 'lora', hyper: {} }).catch((e: unknown) => e);
    await expect.poll(() => server.clients.size).toBe(1);
    // let the frame reach the server before closing
    await new Promise((r) => setTimeout(r, 50));
    for (const c of server.clients) c.close(1011, 'server stopping');
    const error = await waiting;
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).body.code).toBe('failed');
    // in the app's words: no API method name, the server's own reason
    expect((error as ApiError).message).toMatch(/^No answer from PEFT Studio: the connection to it was lost \(server stopping\)\. If this was meant to change something/);
    expect((error as ApiError).message).not.toContain('startRun');
    expect(t.state).toBe('closed');
  });

  it('rejects calls at once when no server listens, with the hint, then reconnects when one does', async () => {
    // find a free port, then free it
    const probe = await serve(() => undefined);
    const port = Number(new URL(probe.url).port);
    await new Promise((r) => probe.server.close(r));
    servers.splice(servers.indexOf(probe.server), 1);

    const states: ConnectionState[] = [];
    const t = connect(`ws://127.0.0.1:${port}/api`, { initialDelayMs: 50, hint: 'Open the URL that serve printed.' });
    t.onState((s) => states.push(s));
    const error = await t.call('machine', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toMatch(/^No answer from PEFT Studio: the connection to it was lost\./);
    expect((error as ApiError).message).not.toMatch(/machine|code \d+/);
    expect((error as ApiError).message).toContain('Open the URL that serve printed.');

    // a server appears on that port: the backoff loop finds it and calls work again
    await serve((frame) => ({ id: frame.id, result: { ok: true, value: { models: ['back'], datasets: [] } } }), port);
    await expect.poll(() => t.state, { timeout: 5000 }).toBe('open');
    expect((await t.call('recent', {})).models).toEqual(['back']);
    expect(states).toContain('connecting');
  });

  it('keeps the access token out of the message when the socket cannot even be created', async () => {
    const url = 'ws://127.0.0.1:1/api?token=s3cr3t-t0k';
    const t = createWebSocketTransport({
      url,
      initialDelayMs: 60_000,
      // Chrome: "Failed to construct 'WebSocket': The URL '<url>' is invalid." (the whole address, token included)
      createSocket: (u) => {
        throw new SyntaxError(`Failed to construct 'WebSocket': The URL '${u}' is invalid.`);
      },
    });
    transports.push(t);
    const error = await t.call('listDir', { path: '/' }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error).not.toBeNull();
    expect(error!.message).toMatch(/^No answer from PEFT Studio: cannot connect to it \(Failed to construct 'WebSocket'/);
    expect(error!.message).toContain('?token=…');
    expect(error!.message).not.toContain('s3cr3t-t0k');
  });

  it('opens no socket until the first call or event listener', async () => {
    const { url, seen } = await serve(() => undefined);
    const t = connect(url);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    expect(t.state).toBe('closed');
    t.onEvent(() => {});
    await expect.poll(() => seen.length).toBe(1);
  });

  it('refuses calls after dispose and rejects those waiting', async () => {
    const { url } = await serve(() => undefined);
    const t = connect(url);
    const waiting = t.call('recent', {}).catch((e: unknown) => e);
    t.dispose();
    expect(((await waiting) as ApiError).message).toContain('this page closed its connection');
    await expect(t.call('recent', {})).rejects.toThrow(/Cannot reach PEFT Studio: this page closed its connection/);
  });
});
