// Headers on every response of the browser-mode server. The CSP is the
// renderer's (no inline scripts or styles, nothing remote); `connect-src
// 'self'` also admits the same-origin WebSocket. Referrer-Policy matters
// because the token sits in the page URL: no link or request may carry it to
// another site.
import type { ServerResponse } from 'node:http';

import { CONTENT_SECURITY_POLICY } from '../renderer-files/content-security-policy.js';


export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
}

/** A short plain-text answer (errors, refusals), with the security headers. */
export function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  setSecurityHeaders(res);
  const body = Buffer.from(text.endsWith('\n') ? text : text + '\n', 'utf8');
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length), 'Cache-Control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
