// Electron's security checklist, applied to the session and to every
// webContents the app ever creates (https://www.electronjs.org/docs/latest/tutorial/security):
// no remote content, a strict CSP, permissions denied, navigation and new
// windows blocked (https links go to the OS browser), <webview> refused.
// The window's own webPreferences (isolation, sandbox, no Node) are in window.ts,
// the IPC sender check in ipc.ts.
import { app, shell, type Session, type WebContents } from 'electron';
import { CONTENT_SECURITY_POLICY } from '../renderer-files/content-security-policy.js';
import { isAppUrl, isExternalLinkAllowed, isRequestAllowed } from './origin.js';

export function hardenSession(session: Session): void {
  // The UI asks for no permission (camera, notifications, clipboard-read, ...).
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
  // No remote content: anything but the app's own pages (and data:/blob:) is cancelled.
  session.webRequest.onBeforeRequest((details, callback) => callback({ cancel: !isRequestAllowed(details.url) }));
  // The protocol handler sets the CSP itself; this covers any other response.
  session.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } }),
  );
}

function openIfHttps(url: string): void {
  if (isExternalLinkAllowed(url)) void shell.openExternal(url);
}

export function guardContents(contents: WebContents): void {
  contents.on('will-navigate', (event) => {
    // The UI is one page; in-app links never navigate. Anything else stays out.
    if (isAppUrl(event.url)) return;
    event.preventDefault();
    openIfHttps(event.url);
  });
  contents.on('will-redirect', (event) => {
    if (!isAppUrl(event.url)) event.preventDefault();
  });
  contents.setWindowOpenHandler(({ url }) => {
    openIfHttps(url);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/** Call once, before the app is ready. */
export function applySecurityChecklist(): void {
  app.enableSandbox(); // every renderer sandboxed, whatever its webPreferences say
  app.on('web-contents-created', (_event, contents) => guardContents(contents));
}
