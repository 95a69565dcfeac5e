// The server must outlive whatever a client sends: request targets that no
// URL parser accepts (review H1), a file that vanishes, a result the wire
// cannot encode (L5); and its token cookie is its own, so two servers on one
// host never overwrite each other's (M1).
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TOKEN_COOKIE_PREFIX, WS_PATH, type ApiEvent, type ApiMethod, type ApiResult } from '../api/contract.js';
import { createStudioService, type StudioService } from '../service/service.js';
import { guardRequests, tokenCookie } from './http.js';
import { tokenCookieName } from './auth.js';
import { startServer, type RunningServer } from './server.js';
import { lookupStatic } from './static.js';
import { makeStaticFixture, type StaticFixture } from './testing/static-fixture.js';
import { rawRequest } from './testing/raw-http.js';
import { call, openSocket } from './testing/ws-client.js';
import { attachApiSocket } from './websocket.js';

process.env.PEFT_STUDIO_HOME = mkdtempSync(join(tmpdir(), 'peft-serve-home-'));

let fx: StaticFixture;
let service: StudioService;
let server: RunningServer;

beforeAll(async () => {
  fx = makeStaticFixture();
  service = createStudioService({ mode: 'browser', allowedRoots: [fx.root] });
  server = await startServer({ host: '127.0.0.1', port: 0, service, staticDir: fx.staticDir });
});

afterAll(async () => {
  await server?.close();
  await service?.close();
  fx?.cleanup();
});

/** Sends `head` byte for byte on a fresh socket; resolves with the status line (or '' when the socket ends without one). */
function rawStatusLine(port: number, head: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${JSON.stringify(head.split('\r\n')[0])} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got.split('\r\n')[0] ?? '');
    });
    socket.write(head);
  });
}

const UNPARSABLE_TARGETS = ['//x@/', '//a:99999/', '//[/', 'http://[::1'];

describe('request targets no URL parser accepts (H1)', () => {
  it.each(UNPARSABLE_TARGETS)('GET %s is answered 400 and the server answers the next request', async (target) => {
    const line = await rawStatusLine(server.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(line).toBe('HTTP/1.1 400 Bad Request');
    const next = await rawRequest(server.port, `/?token=${server.token}`);
    expect(next.status).toBe(200);
    expect(next.body).toBe(fx.indexHtml);
  });

  it.each(UNPARSABLE_TARGETS)('a WebSocket upgrade to %s is refused 400 and the server lives on', async (target) => {
    const head =
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nOrigin: http://127.0.0.1:${server.port}\r\n` +
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    expect(await rawStatusLine(server.port, head)).toBe('HTTP/1.1 400 Bad Request');
    const s = await openSocket(`ws://127.0.0.1:${server.port}${WS_PATH}?token=${server.token}`, { Origin: `http://127.0.0.1:${server.port}` });
    if (!('ws' in s)) throw new Error(`refused with ${s.status}`);
    expect((await call(s, 1, 'machine', {})).ok).toBe(true);
    s.ws.close();
  });
});

describe('guardRequests (L5: nothing a handler throws escapes)', () => {
  it('answers 500 for a handler that throws, and serves on', async () => {
    let calls = 0;
    const plain = createServer(
      guardRequests(() => {
        calls += 1;
        if (calls === 1) throw new Error('statSync: ENOENT, the file vanished');
        throw new RangeError('anything else');
      }),
    );
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const port = (plain.address() as { port: number }).port;
    try {
      expect((await rawRequest(port, '/a')).status).toBe(500);
      expect((await rawRequest(port, '/b')).status).toBe(500);
      expect(calls).toBe(2);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  it('lookupStatic stats the file once and hands back its size (no second stat that a deleted file could throw from)', () => {
    const found = lookupStatic(realpathSync(fx.staticDir), '/assets/app.js');
    expect(found).toMatchObject({ ok: true, size: Buffer.byteLength(fx.assetJs) });
  });
});

describe('a result the wire cannot encode (L5)', () => {
  it('goes back as a failed result, never an unhandled rejection', async () => {
    // a service whose answer holds a BigInt: JSON.stringify throws on it
    const odd: StudioService = {
      // @ts-expect-error no method answers this shape: the BigInt is the point
      call: async (method: string): Promise<ApiResult<ApiMethod>> => ({ ok: true, value: { method, n: 1n } }),
      onEvent: (_listener: (e: ApiEvent) => void) => () => {},
      close: async () => {},
    };
    const http: Server = createServer((_req, res) => res.end());
    const token = 'b'.repeat(64);
    const sockets = attachApiSocket(http, { token, service: odd });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as { port: number }).port;
    try {
      const s = await openSocket(`ws://127.0.0.1:${port}${WS_PATH}?token=${token}`, { Origin: `http://127.0.0.1:${port}` });
      if (!('ws' in s)) throw new Error(`refused with ${s.status}`);
      const result = await call(s, 9, 'machine', {});
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.code).toBe('failed');
        expect(result.error.message).toMatch(/could not be sent.*BigInt/);
      }
      s.ws.close();
    } finally {
      await sockets.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});

describe('the token cookie is per server (M1)', () => {
  const expectedName = (token: string) => `${TOKEN_COOKIE_PREFIX}${createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12)}`;

  it('is named after the first 12 hex digits of sha256(token)', async () => {
    expect(tokenCookieName(server.token)).toBe(expectedName(server.token));
    expect(tokenCookieName(server.token)).toMatch(/^peft_studio_token_[0-9a-f]{12}$/);
    const r = await rawRequest(server.port, `/?token=${server.token}`);
    expect(r.headers['set-cookie']?.[0].split('; ')[0]).toBe(`${expectedName(server.token)}=${server.token}`);
    expect(tokenCookie(server.token).split('; ')[0]).toBe(`${expectedName(server.token)}=${server.token}`);
  });

  it('two servers on one host each read only their own cookie, whatever else the browser sends', async () => {
    const other = await startServer({ host: '127.0.0.1', port: 0, service, staticDir: fx.staticDir });
    try {
      // a browser sends every cookie of the host, whichever port set it
      const both = `${expectedName(other.token)}=${other.token}; ${expectedName(server.token)}=${server.token}`;
      const a = await rawRequest(server.port, '/assets/app.js', { headers: { Cookie: both } });
      const b = await rawRequest(other.port, '/assets/app.js', { headers: { Cookie: both } });
      expect([a.status, b.status]).toEqual([200, 200]);
      // the other server's cookie alone is no token here (401, not a wrong-token 403 that would hide ours)
      expect((await rawRequest(server.port, '/assets/app.js', { headers: { Cookie: `${expectedName(other.token)}=${other.token}` } })).status).toBe(401);
      // the old shared name is not read any more
      expect((await rawRequest(server.port, '/assets/app.js', { headers: { Cookie: `peft_studio_token=${server.token}` } })).status).toBe(401);
    } finally {
      await other.close();
    }
  });
});
