// Browser mode: the access token arrives once in the page URL
// (`?token=...`, as `peft-studio serve` prints it). It is kept for this tab
// in sessionStorage and removed from the address bar, so it does not end up
// in bookmarks, screenshots or the history list.
import { TOKEN_PARAM } from '../../../electron/api/contract.js';
import type { ProbeResult } from './websocket.js';

const STORAGE_KEY = 'peft-studio-token';

export interface TokenPlace {
  location: Pick<Location, 'href'>;
  history: Pick<History, 'replaceState' | 'state'>;
  storage: Pick<Storage, 'getItem' | 'setItem'>;
}

/** The token from the URL (then stored and stripped) or from this tab's storage; '' when there is none. */
export function takeToken(place: TokenPlace): string {
  const url = new URL(place.location.href);
  const fromUrl = url.searchParams.get(TOKEN_PARAM);
  if (fromUrl) {
    place.storage.setItem(STORAGE_KEY, fromUrl);
    url.searchParams.delete(TOKEN_PARAM);
    place.history.replaceState(place.history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return place.storage.getItem(STORAGE_KEY) ?? '';
}

/** ws(s)://host/api?token=... for the page at `pageHref`. */
export function socketUrl(pageHref: string, wsPath: string, token: string): string {
  const page = new URL(pageHref);
  const url = new URL(wsPath, page);
  url.protocol = page.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  if (token) url.searchParams.set(TOKEN_PARAM, token);
  return url.toString();
}

/**
 * Whether the server answers this page's token: 401/403 mean it runs but
 * refuses it (restarted: a new token); no answer at all, that it is down.
 */
export async function probeServer(pageHref: string, token: string, fetcher: typeof fetch = fetch): Promise<ProbeResult> {
  const url = new URL('/', pageHref);
  if (token) url.searchParams.set(TOKEN_PARAM, token);
  try {
    const res = await fetcher(url, { cache: 'no-store', credentials: 'same-origin' });
    return res.status === 401 || res.status === 403 ? 'refused' : 'accepted';
  } catch {
    return 'unreachable';
  }
}
