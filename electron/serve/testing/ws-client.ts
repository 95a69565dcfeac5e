// For the serve tests: a `ws` client that either opens or reports the HTTP
// status the server refused the upgrade with, and a call helper that waits
// for the answer with the same id.
import WebSocket from 'ws';

import type { ApiResult, ServerFrame } from '../../api/contract.js';

export type Opened = { ws: WebSocket; frames: ServerFrame[] } | { status: number };

export function openSocket(url: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const frames: ServerFrame[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('error', (e) => reject(e));
  });
}

export function waitFor<T>(check: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = check();
      if (v !== undefined) return resolve(v);
      if (Date.now() - start > timeoutMs) return reject(new Error('timed out waiting'));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** Sends text as-is and waits for the result frame with `id`. */
export async function sendAndWait(socket: { ws: WebSocket; frames: ServerFrame[] }, id: number, text: string): Promise<ApiResult<never>> {
  socket.ws.send(text);
  const frame = await waitFor(() => socket.frames.find((f) => 'id' in f && f.id === id));
  return (frame as { result: ApiResult<never> }).result;
}

export function call(socket: { ws: WebSocket; frames: ServerFrame[] }, id: number, method: string, request: unknown): Promise<ApiResult<never>> {
  return sendAndWait(socket, id, JSON.stringify({ id, method, request }));
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
}
