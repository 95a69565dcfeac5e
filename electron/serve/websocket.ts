// The API over one WebSocket path: each ClientFrame becomes service.call and
// its result goes back under the same id; every service event goes to every
// open socket. The upgrade is refused (as a plain HTTP answer) before the
// handshake unless the path, the token and the Origin are right. Nothing a
// client sends may throw out of a listener: that would end the process, and
// with it every live run.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { WebSocketServer, WebSocket, type RawData } from 'ws';

import { WS_PATH, type ApiMethod, type ApiResult, type ServerFrame } from '../api/contract.js';
import type { StudioService } from '../service/service.js';
import { BAD_TARGET_MESSAGE, checkToken, originMatchesHost, requestUrl } from './auth.js';
import { parseClientFrame } from './frames.js';

/** One frame may be at most this big; our requests are small JSON objects. */
export const MAX_FRAME_BYTES = 1 << 20;
/** A client that lets this much pile up unread is dropped rather than grow our memory. */
const MAX_BUFFERED_BYTES = 16 << 20;
/** Pings keep idle SSH tunnels and proxies from dropping the connection. */
const PING_INTERVAL_MS = 30_000;

export interface ApiSocketServer {
  /** sockets currently open */
  readonly clients: ReadonlySet<WebSocket>;
  close(): Promise<void>;
}

function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = Buffer.from(message + '\n', 'utf8');
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

function send(ws: WebSocket, frame: ServerFrame): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    ws.terminate();
    return;
  }
  ws.send(JSON.stringify(frame));
}

async function answer(ws: WebSocket, service: StudioService, data: RawData, isBinary: boolean): Promise<void> {
  if (isBinary) {
    ws.close(1003, 'binary frames are not accepted');
    return;
  }
  const frame = parseClientFrame(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
  if (frame.kind === 'violation') {
    ws.close(1008, frame.reason);
    return;
  }
  if (frame.kind === 'reject') {
    send(ws, { id: frame.id, result: { ok: false, error: frame.error } });
    return;
  }
  let result: ApiResult<ApiMethod>;
  try {
    result = await service.call(frame.method, frame.request);
  } catch (error) {
    // the service promises never to throw; a bug there must not take the socket down
    result = { ok: false, error: { code: 'failed', message: error instanceof Error ? error.message : String(error) } };
  }
  try {
    send(ws, { id: frame.id, result });
  } catch (error) {
    // a value JSON cannot encode (a BigInt, a cycle): the caller still gets an answer
    const why = error instanceof Error ? error.message : String(error);
    send(ws, { id: frame.id, result: { ok: false, error: { code: 'failed', message: `internal error: the result of ${frame.method} could not be sent (${why}); please report it` } } });
  }
}

export function attachApiSocket(server: Server, options: { token: string; service: StudioService }): ApiSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const alive = new WeakMap<WebSocket, boolean>();

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = requestUrl(req);
    if (url === null) return refuseUpgrade(socket, 400, BAD_TARGET_MESSAGE);
    if (url.pathname !== WS_PATH) return refuseUpgrade(socket, 404, `The API WebSocket is at ${WS_PATH}.`);
    const auth = checkToken(req, options.token);
    if (!auth.ok) return refuseUpgrade(socket, auth.status, auth.message);
    if (!originMatchesHost(req)) {
      return refuseUpgrade(socket, 403, 'Refused: this WebSocket was not opened by the PEFT Studio page (Origin does not match).');
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      upgrade(req, socket, head);
    } catch {
      socket.destroy();
    }
  };
  server.on('upgrade', onUpgrade);

  wss.on('connection', (ws: WebSocket) => {
    alive.set(ws, true);
    ws.on('pong', () => alive.set(ws, true));
    // too-big frames and bad UTF-8 end up here after ws has closed the socket with the right code
    ws.on('error', () => ws.terminate());
    // answer() catches its own failures; this catch is the last guard against an unhandled rejection
    ws.on('message', (data, isBinary) => void answer(ws, options.service, data, isBinary).catch(() => ws.terminate()));
  });

  const stopEvents = options.service.onEvent((event) => {
    for (const ws of wss.clients) send(ws, { event });
  });

  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, PING_INTERVAL_MS);
  pinger.unref();

  return {
    clients: wss.clients,
    close: () =>
      new Promise<void>((done) => {
        clearInterval(pinger);
        stopEvents();
        server.off('upgrade', onUpgrade);
        for (const ws of wss.clients) ws.close(1001, 'PEFT Studio is shutting down');
        // sockets that do not finish the closing handshake promptly are cut
        const cut = setTimeout(() => {
          for (const ws of wss.clients) ws.terminate();
        }, 1000);
        cut.unref();
        wss.close(() => {
          clearTimeout(cut);
          done();
        });
      }),
  };
}
