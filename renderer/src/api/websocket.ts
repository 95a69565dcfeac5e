// The browser-mode transport: one WebSocket to `peft-studio serve`, calls
// matched to results by id, events fanned out to listeners.
//
// When the socket closes, every call still waiting is rejected at once with
// an error that says so (the server may have stopped, or the operation may
// still be running there); nothing hangs. The transport then reconnects
// with a growing delay, and calls made meanwhile wait for the next socket.
// A socket that cannot even open is checked with the `probe`: when the server
// answers but refuses this page's token (it was restarted, with a new token),
// reconnecting can never work, and the state says 'refused' instead.
//
// Errors are for the app's user: no API method names, no close codes.
import type { ApiEvent, ApiMethod, ApiResult, ApiTransport, ClientFrame, ServerFrame } from '../../../electron/api/contract.js';
import { transportError, unwrap } from './unwrap.js';

/** The part of the WebSocket API used here (the browser's class and the `ws` package's both fit). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
export type SocketFactory = (url: string) => SocketLike;

/** 'refused': the server runs but no longer accepts this page (restarted with a new token); no reconnecting */
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'refused';

/** What the page's server says to this page's token: it answers and accepts, refuses it, or cannot be reached. */
export type ProbeResult = 'accepted' | 'refused' | 'unreachable';

/** Said to the user when the server was restarted and this page's token no longer opens it. */
export const REFUSED_MESSAGE =
  'PEFT Studio was restarted and no longer accepts this page. Open the address it printed when it started (the one ending in ?token=…); your runs and files are kept.';

export interface WebSocketTransportOptions {
  url: string;
  createSocket: SocketFactory;
  /** first reconnect delay; doubles per failed attempt up to maxDelayMs */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** why calls cannot succeed at all (e.g. no token), added to close errors */
  hint?: string;
  /** asked when a socket closes without ever opening: does the server refuse this page? */
  probe?: () => Promise<ProbeResult>;
}

export interface WebSocketTransport extends ApiTransport {
  readonly state: ConnectionState;
  onState(listener: (state: ConnectionState) => void): () => void;
  /** close for good: no reconnect; waiting calls are rejected */
  dispose(): void;
}

const OPEN = 1;

/**
 * The text with the access token left out: a browser's error for a socket
 * it cannot even create quotes the whole address, ?token=… included, and
 * the message may be shown, copied or logged.
 */
export function redactToken(text: string, url: string): string {
  let out = text.replace(/([?&#]token=)[^&#\s'"`)\]]+/gi, '$1…');
  let token: string | null = null;
  try {
    token = new URL(url).searchParams.get('token');
  } catch {
    // not an address: the pattern above is all there is to go by
  }
  if (token) out = out.split(token).join('…');
  return out;
}

interface Pending {
  method: ApiMethod;
  resolve: (result: ApiResult<ApiMethod>) => void;
  reject: (error: Error) => void;
}

export function createWebSocketTransport(options: WebSocketTransportOptions): WebSocketTransport {
  const initialDelay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5000;
  const pending = new Map<number, Pending>();
  /** frames of calls made while no socket was open, sent on the next open */
  const queue: ClientFrame[] = [];
  const eventListeners = new Set<(e: ApiEvent) => void>();
  const stateListeners = new Set<(s: ConnectionState) => void>();
  let nextId = 1;
  let socket: SocketLike | null = null;
  let state: ConnectionState = 'closed';
  let delay = initialDelay;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let disposed = false;
  /** the server refuses this page's token: no more sockets (a reload with the printed address is the way on) */
  let refused = false;

  function setState(s: ConnectionState): void {
    if (s === state) return;
    state = s;
    for (const l of stateListeners) l(s);
  }

  function connect(): void {
    if (disposed || refused || socket) return;
    timer = null;
    setState('connecting');
    let ws: SocketLike;
    try {
      ws = options.createSocket(options.url);
    } catch (e) {
      failAll(`cannot connect to it (${redactToken(e instanceof Error ? e.message : String(e), options.url)})`);
      scheduleReconnect();
      return;
    }
    socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      delay = initialDelay;
      setState('open');
      for (const frame of queue.splice(0)) ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (ev) => receive(ev.data);
    ws.onerror = () => {
      // the close event follows and does the work
    };
    ws.onclose = (ev) => {
      if (socket !== ws) return;
      socket = null;
      setState('closed');
      // the server's own reason is in words ("PEFT Studio is shutting down"); a bare code means nothing to the user
      failAll(`the connection to it was lost${ev.reason ? ` (${ev.reason})` : ''}`);
      if (opened || !options.probe) return scheduleReconnect();
      void options.probe().then(
        (verdict) => {
          if (disposed || socket) return;
          if (verdict !== 'refused') return scheduleReconnect();
          refused = true;
          setState('refused');
          failAll(REFUSED_MESSAGE);
        },
        () => scheduleReconnect(),
      );
    };
  }

  function scheduleReconnect(): void {
    if (disposed || timer) return;
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, maxDelay);
  }

  function failAll(what: string): void {
    const hint = options.hint ? ` ${options.hint}` : '';
    // the token stays out of every message (a close reason or an error may quote the address)
    const message = what === REFUSED_MESSAGE
      ? what
      : redactToken(`No answer from PEFT Studio: ${what}. If this was meant to change something (start, pause, cancel, export), check whether it did before trying again.`, options.url) + hint;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(transportError(message));
    }
    queue.length = 0;
  }

  function receive(data: unknown): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data)) as ServerFrame;
    } catch {
      return; // not ours; the server only sends JSON
    }
    if ('event' in frame) {
      for (const l of eventListeners) l(frame.event);
      return;
    }
    const p = pending.get(frame.id);
    if (!p) return;
    pending.delete(frame.id);
    p.resolve(frame.result);
  }

  const transport: WebSocketTransport = {
    get state() {
      return state;
    },
    async call(method, request) {
      if (disposed) throw transportError('Cannot reach PEFT Studio: this page closed its connection. Reload the page.');
      if (refused) throw transportError(REFUSED_MESSAGE);
      const id = nextId++;
      const frame: ClientFrame = { id, method, request };
      const result = await new Promise<ApiResult<ApiMethod>>((resolve, reject) => {
        pending.set(id, { method, resolve, reject });
        if (socket && socket.readyState === OPEN) socket.send(JSON.stringify(frame));
        else {
          queue.push(frame);
          if (!socket && !timer) connect();
        }
      });
      return unwrap(result as ApiResult<typeof method>);
    },
    onEvent(listener) {
      eventListeners.add(listener);
      // someone waits for pushed events: they need a socket even before any call
      if (!socket && !timer) connect();
      return () => eventListeners.delete(listener);
    },
    onState(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    dispose() {
      disposed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const ws = socket;
      socket = null;
      failAll('this page closed its connection');
      setState('closed');
      ws?.close(1000, 'closed by the page');
    },
  };
  // No socket until the first call or event listener: importing the API
  // (a test, a page not yet shown) opens no connection.
  return transport;
}
