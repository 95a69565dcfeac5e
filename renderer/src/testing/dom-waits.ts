// Waiting on the page in the renderer's tests: `until` polls a condition
// (applying Svelte's pending updates first, so the DOM is current) and
// fails naming what it waited for; `byId` finds an element by its test id.
import { flushSync } from 'svelte';

export async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    flushSync();
    if (cond()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const byId = (root: HTMLElement, id: string) => root.querySelector<HTMLElement>(`[data-testid="${id}"]`);
