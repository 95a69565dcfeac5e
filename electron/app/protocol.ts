// Serves dist/renderer on app://studio/ (why a custom scheme and not
// file://: see origin.ts). Only GET, only files inside the renderer folder,
// each response with the strict CSP header.
import { readFile } from 'node:fs/promises';
import { protocol, type Session } from 'electron';
import { CONTENT_SECURITY_POLICY } from '../renderer-files/content-security-policy.js';
import { contentType } from '../renderer-files/content-types.js';
import { APP_SCHEME, rendererFileFor } from './origin.js';

/**
 * Must run before the app is ready: a standard scheme resolves relative URLs
 * and has a host (an origin of its own); a secure one is a secure context
 * like https; supportFetchAPI lets the page's same-origin fetches (Vite's
 * module scripts and preloads) reach it. corsEnabled stays off: it would let
 * other origins read app:// responses without any CORS check.
 */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: false, stream: false } },
  ]);
}

export function serveRenderer(session: Session, rendererDir: string): void {
  session.protocol.handle(APP_SCHEME, async (request) => {
    if (request.method !== 'GET') return new Response('method not allowed', { status: 405 });
    const file = rendererFileFor(rendererDir, request.url);
    if (!file) return new Response('not found', { status: 404 });
    let body: Buffer;
    try {
      body = await readFile(file); // Electron's fs reads inside app.asar
    } catch {
      return new Response('not found', { status: 404 });
    }
    return new Response(new Uint8Array(body), {
      status: 200,
      headers: {
        'Content-Type': contentType(file),
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-store',
      },
    });
  });
}
