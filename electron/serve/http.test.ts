// The browser-mode server over real HTTP, with the real studio service.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createStudioService, type StudioService } from '../service/service.js';
import { tokenCookieName } from './auth.js';
import { startServer, type RunningServer } from './server.js';
import { makeStaticFixture, type StaticFixture } from './testing/static-fixture.js';
import { rawRequest } from './testing/raw-http.js';

process.env.PEFT_STUDIO_HOME = mkdtempSync(join(tmpdir(), 'peft-serve-home-'));

let fx: StaticFixture;
let service: StudioService;
let server: RunningServer;
let cookie: string;

beforeAll(async () => {
  fx = makeStaticFixture();
  service = createStudioService({ mode: 'browser', allowedRoots: [fx.root] });
  server = await startServer({ host: '127.0.0.1', port: 0, service, staticDir: fx.staticDir });
  cookie = `${tokenCookieName(server.token)}=${server.token}`;
});

afterAll(async () => {
  await server?.close();
  await service?.close();
  fx?.cleanup();
});

function expectSecurityHeaders(headers: Record<string, unknown>): void {
  const csp = String(headers['content-security-policy']);
  for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'"]) {
    expect(csp.split('; ')).toContain(directive);
  }
  expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['x-frame-options']).toBe('DENY');
}

describe('peft-studio serve over HTTP', () => {
  it('prints a URL with a 64-hex-digit token on the chosen port', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token).toMatch(/^[0-9a-f]{64}$/);
    expect(server.port).toBeGreaterThan(0);
  });

  it('refuses the page without the token (401) and with a wrong one (403)', async () => {
    const none = await rawRequest(server.port, '/');
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/token/);
    expect(none.body).not.toContain('studio</body>');
    expectSecurityHeaders(none.headers);

    const wrong = await rawRequest(server.port, `/?token=${'0'.repeat(64)}`);
    expect(wrong.status).toBe(403);
    expect(wrong.body).not.toContain('studio</body>');
    expect(wrong.headers['set-cookie']).toBeUndefined();

    const wrongCookie = await rawRequest(server.port, '/', { headers: { Cookie: `${tokenCookieName(server.token)}=${server.token.slice(1)}x` } });
    expect(wrongCookie.status).toBe(403);
  });

  it('serves the page with the token, sets the HttpOnly SameSite=Strict cookie and the strict headers', async () => {
    const r = await rawRequest(server.port, `/?token=${server.token}`);
    expect(r.status).toBe(200);
    expect(r.body).toBe(fx.indexHtml);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    expectSecurityHeaders(r.headers);
    const setCookie = r.headers['set-cookie'] ?? [];
    expect(setCookie).toHaveLength(1);
    const parts = setCookie[0].split('; ');
    expect(parts[0]).toBe(`${tokenCookieName(server.token)}=${server.token}`);
    expect(parts).toContain('HttpOnly');
    expect(parts).toContain('SameSite=Strict');
    expect(parts).toContain('Path=/');
  });

  it('serves assets to the cookie and refuses them without it', async () => {
    const withCookie = await rawRequest(server.port, '/assets/app.js', { headers: { Cookie: `other=1; ${cookie}` } });
    expect(withCookie.status).toBe(200);
    expect(withCookie.body).toBe(fx.assetJs);
    expect(withCookie.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(withCookie.headers['set-cookie']).toBeUndefined();
    expectSecurityHeaders(withCookie.headers);

    expect((await rawRequest(server.port, '/assets/app.js')).status).toBe(401);
    expect((await rawRequest(server.port, '/assets/missing.js', { headers: { Cookie: cookie } })).status).toBe(404);
  });

  it('answers HEAD without a body', async () => {
    const r = await rawRequest(server.port, '/', { method: 'HEAD', headers: { Cookie: cookie } });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(fx.indexHtml));
  });

  it('never returns a file outside the renderer folder', async () => {
    const paths = [
      '/../secret.txt',
      '/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/..%5csecret.txt',
      '/../package.json',
      '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      `/${fx.secretFile}`,
      '/secret.txt%00.js',
    ];
    for (const path of paths) {
      const r = await rawRequest(server.port, path, { headers: { Cookie: cookie } });
      expect([400, 403, 404], path).toContain(r.status);
      expect(r.body, path).not.toContain(fx.secretText);
      expect(r.body, path).not.toContain('root:');
    }
  });

  it('refuses state-changing requests from another origin or none', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    expect((await rawRequest(server.port, '/', { method: 'POST', headers: { Cookie: cookie } })).status).toBe(403);
    expect((await rawRequest(server.port, '/', { method: 'POST', headers: { Cookie: cookie, Origin: 'http://evil.example' } })).status).toBe(403);
    expect((await rawRequest(server.port, '/', { method: 'POST', headers: { Cookie: cookie, Origin: 'null' } })).status).toBe(403);
    // from our own page it passes the checks and meets the method rule: nothing here takes POST
    const own = await rawRequest(server.port, '/', { method: 'POST', headers: { Cookie: cookie, Origin: origin } });
    expect(own.status).toBe(405);
    expect(own.headers.allow).toBe('GET, HEAD');
    // the token comes first: no token is 401 whatever the origin
    expect((await rawRequest(server.port, '/', { method: 'POST', headers: { Origin: origin } })).status).toBe(401);
  });

  it('points plain GETs of the API path at the WebSocket', async () => {
    expect((await rawRequest(server.port, '/api', { headers: { Cookie: cookie } })).status).toBe(426);
    expect((await rawRequest(server.port, '/api')).status).toBe(401);
  });
});
