// The HTTP side of browser mode: every request shows the token (query or
// cookie) before anything is served; the page load that carries it in the
// query gets the HttpOnly cookie so the page's assets need no token in their
// URLs. The server only serves files: the API is the WebSocket (websocket.ts).
// Nothing a request does may throw out of the handler: an uncaught throw in a
// 'request' listener ends the process, and with it every live run.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import { WS_PATH } from '../api/contract.js';
import { checkToken, needsOriginCheck, originMatchesHost, requestUrl, tokenCookieName } from './auth.js';
import { sendText } from './headers.js';
import { serveStatic } from './static.js';

export interface HttpOptions {
  token: string;
  /** the real path of the built renderer folder */
  staticDir: string;
}

/** The cookie the first page load sets: HttpOnly (no script reads it), SameSite=Strict (no other site sends it). */
export function tokenCookie(token: string): string {
  return `${tokenCookieName(token)}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

/** Runs `handler`, answering 500 (or cutting the connection once headers went out) for anything it throws. */
export function guardRequests(handler: RequestListener): RequestListener {
  return (req, res) => {
    try {
      handler(req, res);
    } catch {
      if (res.headersSent) res.destroy();
      else sendText(res, 500, 'Internal error while answering this request; the server is still running.');
    }
  };
}

function answer(options: HttpOptions, req: IncomingMessage, res: ServerResponse): void {
  const auth = checkToken(req, options.token);
  if (!auth.ok) {
    sendText(res, auth.status, auth.message);
    return;
  }
  if (needsOriginCheck(req, false) && !originMatchesHost(req)) {
    sendText(res, 403, 'Refused: this request did not come from the PEFT Studio page (Origin does not match).');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'Only GET and HEAD are served; the API is the WebSocket.', { Allow: 'GET, HEAD' });
    return;
  }
  // checkToken already refused a target that is no URL
  const url = requestUrl(req)!;
  if (url.pathname === WS_PATH) {
    sendText(res, 426, 'The API speaks WebSocket only.', { Upgrade: 'websocket' });
    return;
  }
  serveStatic(res, options.staticDir, url.pathname, auth.viaQuery ? { 'Set-Cookie': tokenCookie(options.token) } : {});
}

export function createRequestHandler(options: HttpOptions): RequestListener {
  return guardRequests((req, res) => answer(options, req, res));
}
