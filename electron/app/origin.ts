// The app's own origin and the checks built on it. Pure functions (no
// 'electron' import) so they can be tested under plain Node.
//
// The renderer is served from a custom scheme, app://studio/, rather than
// file://. file:// pages share one origin with every file on the disk, and
// CSP 'self' then allows any of them; a standard, secure, privileged scheme
// gives the UI an origin of its own, which the IPC sender check and the
// navigation guard compare against, and the protocol handler serves only
// what is inside dist/renderer.
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

export const APP_SCHEME = 'app';
export const APP_HOST = 'studio';
export const APP_INDEX_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;


/**
 * True for URLs of the app itself. WHATWG URL gives non-special schemes an
 * opaque origin ('null'), so scheme and host are compared instead.
 */
export function isAppUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST && parsed.username === '' && parsed.password === '';
}

/** Links the OS browser may open: https only (never file:, javascript:, custom schemes, plain http). */
export function isExternalLinkAllowed(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * What the session may load: the app's own pages and inline data (data: for
 * images, blob: for what the renderer creates itself, devtools in
 * development). Everything else, remote content above all, is cancelled.
 */
export function isRequestAllowed(url: string): boolean {
  if (isAppUrl(url)) return true;
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  return scheme === 'data:' || scheme === 'blob:' || scheme === 'devtools:';
}

/**
 * The file under `rendererDir` an app:// URL names, or null when the URL is
 * not ours or escapes the folder. '/' is the index page.
 */
export function rendererFileFor(rendererDir: string, url: string): string | null {
  if (!isAppUrl(url)) return null;
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return null; // malformed percent-encoding
  }
  if (path.includes('\0')) return null;
  if (path === '/' || path === '') path = '/index.html';
  const root = resolve(rendererDir);
  const file = resolve(join(root, path));
  const rel = relative(root, file);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null;
  return file;
}


/** What the IPC handler knows about a message's sender. */
export interface SenderFacts {
  /** the webContents the message came from */
  senderId: number;
  /** our window's webContents (null: the window is gone) */
  windowContentsId: number | null;
  /** the frame that sent it: null when it navigated away or was destroyed */
  frameUrl: string | null;
  /** the frame is the main frame of our window (no iframes) */
  isMainFrame: boolean;
}

/** Why a sender is refused, or null when it is our window's main frame showing our app. */
export function senderRefusal(s: SenderFacts): string | null {
  if (s.windowContentsId === null || s.senderId !== s.windowContentsId) return 'the message did not come from the PEFT Studio window';
  if (s.frameUrl === null) return 'the sending frame is gone';
  if (!s.isMainFrame) return 'the message came from a subframe';
  if (!isAppUrl(s.frameUrl)) return `the sending page (${s.frameUrl}) is not the PEFT Studio app`;
  return null;
}
