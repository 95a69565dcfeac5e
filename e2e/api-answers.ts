// Which of the page's API calls the server has answered, read from the
// WebSocket frames: a test that must act only once a call has reached the
// service (a cancel sent to a run the test holds still) waits for its answer
// here instead of for a change on the page that may come and go unseen.
// Call `watchAnswers` before the page opens its socket (before page.goto).
import type { Page } from '@playwright/test';
import type { ApiMethod, ClientFrame, ServerFrame } from '../electron/api/contract.js';

export interface Answers {
  /** how many calls of this method have been answered so far (ok or error) */
  count(method: ApiMethod): number;
}

export function watchAnswers(page: Page): Answers {
  const answered = new Map<ApiMethod, number>();
  page.on('websocket', (ws) => {
    const asked = new Map<number, ApiMethod>(); // call id -> method, per socket (ids start again on a reload)
    ws.on('framesent', (f) => {
      const frame = JSON.parse(String(f.payload)) as ClientFrame;
      asked.set(frame.id, frame.method);
    });
    ws.on('framereceived', (f) => {
      const frame = JSON.parse(String(f.payload)) as ServerFrame;
      if (!('id' in frame)) return; // an event, not an answer
      const method = asked.get(frame.id);
      if (method === undefined) return;
      asked.delete(frame.id);
      answered.set(method, (answered.get(method) ?? 0) + 1);
    });
  });
  return { count: (method) => answered.get(method) ?? 0 };
}
