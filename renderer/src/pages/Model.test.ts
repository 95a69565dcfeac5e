// The Model step rendered in jsdom against the real studio service (in this
// process, behind the preload bridge the desktop app has): the model field
// is what Next goes on with. A typed folder is marked "not used yet"; Next
// reads it first and stays on the page with its error when it is no model;
// leaving the field reads it too.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { PreloadBridge } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

/** model folders whose reads wait (see `gate`) */
const gates = new Map<string, Promise<void>>();

/** Holds the reads of `dir` until the returned function is called. */
function gate(dir: string): () => void {
  let open!: () => void;
  gates.set(dir, new Promise<void>((resolve) => (open = resolve)));
  return () => {
    gates.delete(dir);
    open();
  };
}

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-model-page-',
  allowedRoots: null,
  bridge: (bridge) => ({
    ...bridge,
    // a folder with a gate is read once the test opens it (reads that finish out of order)
    call: (async (method, request) => {
      if (method === 'inspectModel') await gates.get((request as { model: string }).model);
      return bridge.call(method, request);
    }) as PreloadBridge['call'],
  }),
  load: () => import('./Model.svelte'),
});



function type(root: HTMLElement, value: string): HTMLInputElement {
  const input = byId(root, 'model-picker-input') as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
  return input;
}

/** The page with the demo model loaded. */
async function renderWithDemo(): Promise<{ root: HTMLElement; studio: Studio }> {
  const studio = new Studio();
  const root = harness.mount({ studio });
  await until('the demo button', () => !(byId(root, 'model-demo') as HTMLButtonElement | null)?.disabled);
  byId(root, 'model-demo')!.click();
  await until('the demo model', () => byId(root, 'model-next') !== null && studio.model === harness.demo.model);
  return { root, studio };
}

function modelCopy(name: string): string {
  const dir = join(harness.home, name);
  cpSync(harness.demo.model, dir, { recursive: true });
  return dir;
}

describe('what to know about the folder', () => {
  it('tensors config.json does not use, and an estimate beyond the positions, are listed in the page\'s words', async () => {
    const { root, studio } = await renderWithDemo();
    expect(byId(root, 'model-notices')).toBeNull(); // the demo model: nothing to say
    const fewer = modelCopy('copy-fewer-layers');
    const config = JSON.parse(readFileSync(join(fewer, 'config.json'), 'utf8')) as { num_hidden_layers: number };
    writeFileSync(join(fewer, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: config.num_hidden_layers - 1 }));
    type(root, fewer);
    byId(root, 'model-picker-use')!.click();
    await until('the copy read', () => studio.model === fewer && byId(root, 'model-notices') !== null);
    const last = config.num_hidden_layers - 1;
    expect(byId(root, 'model-notices')!.textContent).toContain(`but the weights have ${config.num_hidden_layers}: model.layers.${last}.*`);
    const seq = byId(root, 'estimate-seq') as HTMLInputElement;
    seq.value = '4096';
    seq.dispatchEvent(new Event('input', { bubbles: true }));
    byId(root, 'estimate-apply')!.click();
    await until('the estimate', () => (byId(root, 'model-notices')?.textContent ?? '').includes('4096'));
    const text = byId(root, 'model-notices')!.textContent!;
    expect(text).toContain('sequence length 4096 is beyond the model\'s max_position_embeddings');
    expect(text).not.toContain('--seq-len');
  }, 30_000);
});

describe('the model field and Next', () => {
  it('Next with a typed folder that is no model stays on the page with its error; with a model it goes on with that one', async () => {
    const { root, studio } = await renderWithDemo();
    const notAModel = join(harness.home, 'not-a-model');
    mkdirSync(notAModel, { recursive: true });
    type(root, notAModel);
    // typed, not used yet: the field says so
    expect(byId(root, 'model-picker-pending')?.textContent).toContain('Not used yet');
    expect(byId(root, 'model-picker-pending')?.textContent).toContain(harness.demo.model);

    byId(root, 'model-next')!.click();
    await until('the error or the next step', () => byId(root, 'model-error') !== null || studio.page !== 'model');
    expect(studio.page).toBe('model');
    expect(byId(root, 'model-error')!.textContent).toContain(notAModel);
    expect(studio.model).toBe(harness.demo.model);
    // the field still shows what was typed, so it can be corrected; the focus is taken back to it (the error sits far above Next)
    expect((byId(root, 'model-picker-input') as HTMLInputElement).value).toBe(notAModel);
    await until('the focus on the field', () => document.activeElement === byId(root, 'model-picker-input'));

    // put back the folder in use: Next goes on with it
    type(root, harness.demo.model);
    byId(root, 'model-next')!.click();
    await until('the next step', () => studio.page !== 'model');
    expect(studio.model).toBe(harness.demo.model);
    studio.page = 'model';
    flushSync();

    const copy = modelCopy('copy-next');
    type(root, copy);
    byId(root, 'model-next')!.click();
    await until('the next step', () => studio.page !== 'model' || byId(root, 'model-error') !== null);
    expect(byId(root, 'model-error')).toBeNull();
    expect(studio.page).toBe('method');
    expect(studio.model).toBe(copy);
    expect(studio.overview?.report.model).toBe(copy);
  }, 30_000);

  it('leaving the field uses the typed folder', async () => {
    const { root, studio } = await renderWithDemo();
    const copy = modelCopy('copy-blur');
    const input = type(root, copy);
    input.dispatchEvent(new FocusEvent('blur', { relatedTarget: null }));
    await until('the typed model', () => studio.model === copy, 10_000);
    expect(byId(root, 'model-picker-pending')).toBeNull();
    expect(studio.page).toBe('model');
  }, 30_000);

  it('reads finishing out of order: only the newest applies, and an older one does not end "Reading…"', async () => {
    const { root, studio } = await renderWithDemo();
    const a = modelCopy('copy-order-a');
    const b = modelCopy('copy-order-b');
    const openA = gate(a);
    const openB = gate(b);
    type(root, a);
    byId(root, 'model-picker-use')!.click(); // Enter on A
    await until('A is read', () => byId(root, 'model-loading')?.textContent?.includes(a) === true);
    type(root, b);
    byId(root, 'model-next')!.click(); // then Next with B
    await until('B is read', () => byId(root, 'model-loading')?.textContent?.includes(b) === true);

    openA(); // the older read answers first
    await new Promise((r) => setTimeout(r, 200));
    flushSync();
    expect(studio.model).toBe(harness.demo.model);
    expect(byId(root, 'model-loading')?.textContent).toContain(b);

    openB();
    await until('the next step', () => studio.page !== 'model', 10_000);
    expect(studio.model).toBe(b);
    expect(studio.overview?.report.model).toBe(b);
    await new Promise((r) => setTimeout(r, 100));
    expect(studio.model).toBe(b);
  }, 30_000);

  it('after a typed folder failed, pressing on the demo does not read it again, and the demo is used', async () => {
    const studio = new Studio();
    const root = harness.mount({ studio });
    await until('the demo button', () => !(byId(root, 'model-demo') as HTMLButtonElement | null)?.disabled);
    const notAModel = join(harness.home, 'not-a-model-d5');
    mkdirSync(notAModel, { recursive: true });
    const input = type(root, notAModel);
    byId(root, 'model-picker-use')!.click();
    await until('the error', () => byId(root, 'model-error') !== null);

    // a mouse press on the demo button moves the focus there: the field is left
    const demoButton = byId(root, 'model-demo') as HTMLButtonElement;
    input.dispatchEvent(new FocusEvent('blur', { relatedTarget: demoButton }));
    flushSync();
    expect(byId(root, 'model-loading')).toBeNull(); // the failed folder is not read again
    expect(demoButton.disabled).toBe(false); // so the click lands
    demoButton.click();
    await until('the demo model', () => studio.model === harness.demo.model, 10_000);
    expect(byId(root, 'model-error')).toBeNull();
  }, 30_000);

  it('the field refers only to notes that are on the page', async () => {
    const studio = new Studio();
    const root = harness.mount({ studio });
    await until('the demo button', () => !(byId(root, 'model-demo') as HTMLButtonElement | null)?.disabled);
    // nothing chosen yet: a typed folder has no "in use now" note to point at
    const input = type(root, join(harness.home, 'typed-first'));
    expect(byId(root, 'model-picker-pending')).toBeNull();
    expect(input.getAttribute('aria-describedby')).toBeNull();
    // with a folder in use, the note is there and the field points at it
    harness.unmount();
    const shown = await renderWithDemo();
    const typed = type(shown.root, join(harness.home, 'typed-second'));
    const ref = typed.getAttribute('aria-describedby');
    expect(ref).not.toBeNull();
    expect(document.getElementById(ref!)?.dataset.testid).toBe('model-picker-pending');
  }, 30_000);
});
