// Browser mode is protected like Jupyter: the page and the WebSocket API need
// the token `serve` printed (none: 401, a wrong one: 403), and the WebSocket
// must come from the server's own page (another Origin: 403). Every refusal
// is checked beside the same request with the right token succeeding, so a
// server that refused everything would fail here too.
import WebSocket from 'ws';
import { WS_PATH, TOKEN_PARAM, type ServerFrame } from '../electron/api/contract.js';
import { expect, test } from './fixtures.js';

/** Opens a WebSocket from Node; resolves with the HTTP status of a refused upgrade, or the open socket. */
function connect(url: string, origin: string): Promise<{ status: number } | { socket: WebSocket }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { origin });
    socket.once('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      req.destroy();
    });
    socket.once('open', () => resolve({ socket }));
    socket.once('error', reject);
  });
}

/** One API call over an open socket. */
function call(socket: WebSocket, method: string, request: unknown): Promise<ServerFrame> {
  return new Promise((resolve, reject) => {
    const id = 7;
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as ServerFrame;
      if ('id' in frame && frame.id === id) resolve(frame);
    });
    socket.once('error', reject);
    socket.send(JSON.stringify({ id, method, request }));
  });
}

test('the page needs the token: none is 401, a wrong one 403, the right one opens the studio', async ({ page, studio, shots }) => {
  const missing = await page.goto(`${studio.origin}/`);
  expect(missing?.status()).toBe(401);
  await expect(page.locator('body')).toContainText('access token');
  expect(missing?.headers()['content-security-policy']).toContain("default-src 'self'");
  await shots.take('01-no-token-401');

  const wrong = await page.goto(`${studio.origin}/?${TOKEN_PARAM}=${'0'.repeat(studio.token.length)}`);
  expect(wrong?.status()).toBe(403);
  await expect(page.locator('body')).toContainText('Wrong access token');
  await shots.take('02-wrong-token-403');

  const right = await page.goto(studio.url);
  expect(right?.status()).toBe(200);
  await expect(page.getByTestId('page-model')).toBeVisible();
  // the first load set the HttpOnly cookie: the bare URL now works too
  const again = await page.goto(`${studio.origin}/`);
  expect(again?.status()).toBe(200);
  await shots.take('03-right-token');
});

test('a WebSocket from the page without the token is refused', async ({ page, studio }) => {
  // a page at the server's origin (the 401 page) that has never held the token
  expect((await page.goto(`${studio.origin}/`))?.status()).toBe(401);
  const outcome = await page.evaluate(
    (path) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://${location.host}${path}`);
        ws.onopen = () => resolve('opened');
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      }),
    WS_PATH,
  );
  // a refused handshake closes with 1006 (abnormal closure) and never opens
  expect(outcome).toBe('closed 1006');

  // the same socket from the page that was opened with the token (its cookie) opens
  await page.goto(studio.url);
  const withCookie = await page.evaluate(
    (path) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://${location.host}${path}`);
        ws.onopen = () => {
          resolve('opened');
          ws.close();
        };
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      }),
    WS_PATH,
  );
  expect(withCookie).toBe('opened');
});

test('the WebSocket API: no token 401, wrong token 403, foreign Origin 403, own page answers', async ({ studio }) => {
  const ws = studio.origin.replace(/^http/, 'ws') + WS_PATH;
  expect(await connect(ws, studio.origin)).toEqual({ status: 401 });
  expect(await connect(`${ws}?${TOKEN_PARAM}=${'f'.repeat(studio.token.length)}`, studio.origin)).toEqual({ status: 403 });
  expect(await connect(`${ws}?${TOKEN_PARAM}=${studio.token}`, 'http://evil.example')).toEqual({ status: 403 });

  const ok = await connect(`${ws}?${TOKEN_PARAM}=${studio.token}`, studio.origin);
  if (!('socket' in ok)) throw new Error(`the right token and Origin were refused with ${ok.status}`);
  try {
    const frame = await call(ok.socket, 'machine', {});
    expect(frame).toMatchObject({ id: 7, result: { ok: true, value: { mode: 'browser' } } });
  } finally {
    ok.socket.close();
  }
});
