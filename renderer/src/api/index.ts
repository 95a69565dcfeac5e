// The one API object the pages use. Electron's preload exposes
// `window.peftStudio`; without it we are in browser mode and talk to
// `peft-studio serve` over a WebSocket on the page's own host.
import { WS_PATH, type ApiTransport, type PreloadBridge } from '../../../electron/api/contract.js';
import { createIpcTransport } from './ipc.js';
import { probeServer, socketUrl, takeToken } from './token.js';
import { createWebSocketTransport, type ConnectionState, type SocketLike } from './websocket.js';

declare global {
  interface Window {
    peftStudio?: PreloadBridge;
  }
}

export interface Connection {
  readonly state: ConnectionState;
  onState(listener: (state: ConnectionState) => void): () => void;
}

function pick(): { api: ApiTransport; connection: Connection } {
  if (window.peftStudio) {
    return { api: createIpcTransport(window.peftStudio), connection: { state: 'open', onState: () => () => {} } };
  }
  const token = takeToken({ location: window.location, history: window.history, storage: window.sessionStorage });
  const ws = createWebSocketTransport({
    url: socketUrl(window.location.href, WS_PATH, token),
    // the DOM typings name the handlers' events precisely; SocketLike needs only code/reason/data
    createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    hint: token ? undefined : 'This page was opened without its access token: open the full address PEFT Studio printed when it started (it ends in ?token=…).',
    probe: () => probeServer(window.location.href, token),
  });
  return { api: ws, connection: ws };
}

const picked = pick();
export const api: ApiTransport = picked.api;
/** browser mode: the WebSocket's state (Electron: always 'open') */
export const connection: Connection = picked.connection;
