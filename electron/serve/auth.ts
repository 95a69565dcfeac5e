// Who may talk to the server. Two independent checks, as Jupyter does:
// - the token, from the `?token=` query (the printed URL) or the HttpOnly
//   cookie the first page load sets: no token -> 401, a wrong one -> 403;
// - the Origin of anything that can change state (a WebSocket upgrade or a
//   non-GET request) must be the page's own origin, i.e. its host:port equals
//   the Host header. A page on another site cannot read the cookie, but a
//   browser would still attach it to a cross-site WebSocket; the Origin check
//   is what stops that (cross-site WebSocket hijacking).
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

import { TOKEN_COOKIE_PREFIX, TOKEN_PARAM } from '../api/contract.js';
import { tokenMatches } from './token.js';

export type AuthVerdict = { ok: true; viaQuery: boolean } | { ok: false; status: 400 | 401 | 403; message: string };

/**
 * This server's cookie name. Cookies are shared by every port of a host, so a
 * fixed name would let a second server (another tunnel, another port)
 * overwrite the first one's token; the name is derived from the token, and
 * each server reads only its own.
 */
export function tokenCookieName(token: string): string {
  return TOKEN_COOKIE_PREFIX + createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

/** name -> value of the Cookie header (the first of a repeated name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/**
 * The request's path and query, parsed without trusting the Host header; null
 * when the request target is no URL at all (`//x@/`, `//a:99999/`,
 * `http://[::1`: any client, or any web page, can send those).
 */
export function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://request.invalid');
  } catch {
    return null;
  }
}

export const BAD_TARGET_MESSAGE = 'Bad request: the request target is not a valid URL path.';

/** Checks the token of a request: the query first (a fresh URL), then this server's cookie. */
export function checkToken(req: IncomingMessage, token: string): AuthVerdict {
  const url = requestUrl(req);
  if (url === null) return { ok: false, status: 400, message: BAD_TARGET_MESSAGE };
  const fromQuery = url.searchParams.get(TOKEN_PARAM);
  const fromCookie = parseCookies(req.headers.cookie).get(tokenCookieName(token)) ?? null;
  const given = fromQuery ?? fromCookie;
  if (given === null || given === '') {
    return { ok: false, status: 401, message: 'PEFT Studio needs its access token: open the full URL that `peft-studio serve` printed (it ends in ?token=...).' };
  }
  if (!tokenMatches(token, given)) {
    return { ok: false, status: 403, message: 'Wrong access token: open the URL that the running `peft-studio serve` printed (a restart makes a new token).' };
  }
  return { ok: true, viaQuery: fromQuery !== null };
}

/** "host:port" in one canonical spelling (lower case, default port dropped, IPv6 bracketed). */
function canonicalHost(hostAndPort: string): string | null {
  try {
    const url = new URL(`http://${hostAndPort}`);
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return null;
    return url.host;
  } catch {
    return null;
  }
}

/** Whether the request's Origin is this server's own origin (the page it served). */
export function originMatchesHost(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') return false;
  let originUrl: URL;
  try {
    originUrl = new URL(origin);
  } catch {
    return false; // includes the opaque origin "null" (sandboxed frames, file: pages)
  }
  // https too: the server may sit behind a TLS proxy that keeps the Host header
  if (originUrl.protocol !== 'http:' && originUrl.protocol !== 'https:') return false;
  const expected = canonicalHost(host);
  return expected !== null && originUrl.host === expected;
}

/** Requests that can change state must come from our own page. */
export function needsOriginCheck(req: IncomingMessage, isUpgrade: boolean): boolean {
  return isUpgrade || (req.method !== 'GET' && req.method !== 'HEAD');
}
