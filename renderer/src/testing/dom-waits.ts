// Waiting on and acting on the page in the renderer's tests: `until` polls a
// condition (applying Svelte's pending updates first, so the DOM is current)
// and fails naming what it waited for; `byId` finds an element by its test
// id; `type` and `choose` change a field as a user does (the event bind:value
// listens to), `optionsOf` lists a select's option values.
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

/** Types `value` into the input or textarea with test id `id` (bind:value listens to input). */
export function type(root: HTMLElement, id: string, value: string): void {
  const input = byId(root, id) as HTMLInputElement | HTMLTextAreaElement;
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
}

/** Chooses an option of the <select> with test id `id` (bind:value listens to change). */
export function choose(root: HTMLElement, id: string, value: string): void {
  const select = byId(root, id) as HTMLSelectElement;
  select.value = value;
  select.dispatchEvent(new Event('change', { bubbles: true }));
  flushSync();
}

export const optionsOf = (root: HTMLElement, id: string) => [...(byId(root, id) as HTMLSelectElement).options].map((o) => o.value);
