// @vitest-environment node
// The browser-mode transport against the real `peft-studio serve` server
// (electron/serve) when that server goes away: calls waiting fail in the
// app's words (no API method name, no close code); and when it comes back on
// the same port with a new token, the page says what to do (open the address
// it printed) instead of reconnecting forever.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';

import { ApiError, WS_PATH } from '../../../electron/api/contract.js';
import { startServer, type RunningServer } from '../../../electron/serve/server.js';
import { makeStaticFixture, type StaticFixture } from '../../../electron/serve/testing/static-fixture.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { probeServer, socketUrl } from './token.js';
import { createWebSocketTransport, REFUSED_MESSAGE, type ConnectionState, type SocketLike } from './websocket.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-server-restart-'));
process.env.PEFT_STUDIO_HOME = home;
let fixture: StaticFixture;
let service: StudioService;

beforeAll(() => {
  fixture = makeStaticFixture();
  service = createStudioService({ mode: 'browser', allowedRoots: [fixture.root] });
});
afterAll(async () => {
  await service.close();
  fixture.cleanup();
  rmSync(home, { recursive: true, force: true });
});

function serve(port: number, token: string): Promise<RunningServer> {
  return startServer({ host: '127.0.0.1', port, service, staticDir: fixture.staticDir, token });
}

describe('the page when its server stops and comes back with a new token', () => {
  it('fails waiting calls in words, then says to open the printed address', async () => {
    const first = await serve(0, 'a'.repeat(43));
    const page = `http://127.0.0.1:${first.port}/`;
    const token = first.token;
    const states: ConnectionState[] = [];
    const t = createWebSocketTransport({
      url: socketUrl(page, WS_PATH, token),
      // a browser sends its page's Origin; the server checks it
      createSocket: (u) => new WebSocket(u, { origin: `http://127.0.0.1:${first.port}` }) as unknown as SocketLike,
      initialDelayMs: 50,
      probe: () => probeServer(page, token),
    });
    t.onState((s) => states.push(s));
    expect((await t.call('machine', {})).mode).toBe('browser');

    // the server stops while a call waits (a request the server never answers: the socket closes under it)
    const pending = t.call('listDir', { path: fixture.root }).catch((e: unknown) => e);
    await first.close();
    const settled = await pending;
    if (settled instanceof ApiError) {
      expect(settled.message).not.toMatch(/listDir|code \d+|1006/);
      expect(settled.message).toMatch(/^No answer from PEFT Studio: the connection to it was lost/);
    }
    await expect.poll(() => t.state).not.toBe('open');
    const lost = await t.call('machine', {}).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(ApiError);
    expect((lost as ApiError).message).not.toMatch(/"machine"|code \d+/);
    expect((lost as ApiError).message).toMatch(/^No answer from PEFT Studio/);

    // the server comes back on the same port with another token: not "reconnecting" forever
    const second = await serve(first.port, 'b'.repeat(43));
    try {
      await expect.poll(() => t.state, { timeout: 10_000 }).toBe('refused');
      const refused = await t.call('machine', {}).catch((e: unknown) => e);
      expect((refused as ApiError).message).toBe(REFUSED_MESSAGE);
      expect(REFUSED_MESSAGE).toMatch(/Open the address it printed/);
      const seen = states.length;
      await new Promise((r) => setTimeout(r, 300));
      expect(states.length).toBe(seen); // no more attempts
    } finally {
      t.dispose();
      await second.close();
    }
  });

  it('a server that is simply down is "unreachable", one that knows the token "accepted"', async () => {
    const s = await serve(0, 'c'.repeat(43));
    const page = `http://127.0.0.1:${s.port}/`;
    expect(await probeServer(page, s.token)).toBe('accepted');
    expect(await probeServer(page, 'd'.repeat(43))).toBe('refused');
    expect(await probeServer(page, '')).toBe('refused');
    await s.close();
    expect(await probeServer(page, s.token)).toBe('unreachable');
  });
});
