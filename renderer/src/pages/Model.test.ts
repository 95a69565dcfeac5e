// The Model step rendered in jsdom against the real studio service (in this
// process, behind the preload bridge the desktop app has): the model field
// is what Next goes on with. A typed folder is marked "not used yet"; Next
// reads it first and stays on the page with its error when it is no model;
// leaving the field reads it too.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { ModelOverview, PreloadBridge } from '../../../electron/api/contract.js';
import { openModelFolder } from '../../../electron/models/folder.js';
import { SETTING_LIMITS } from '../../../electron/training/settings.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

/** model folders whose reads wait (see `gate`) */
const gates = new Map<string, Promise<void>>();
/** model folders whose read has been answered to the page (the answer is on its way into the page's code) */
const answered = new Set<string>();

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
      if (method !== 'inspectModel') return bridge.call(method, request);
      const { model } = request as { model: string };
      await gates.get(model);
      const answer = await bridge.call(method, request);
      answered.add(model);
      return answer;
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
    // an estimate beyond the positions (the page's own fields no longer ask for one: below): the service's notice, in the page's words
    studio.overview = await inspect(fewer, 4096);
    flushSync();
    const text = byId(root, 'model-notices')!.textContent!;
    expect(text).toContain('sequence length 4096 is beyond the model\'s max_position_embeddings');
    expect(text).not.toContain('--seq-len');
  }, 30_000);
});

/** The app's api, loaded after the harness set the bridge (the module picks its transport when it loads). */
async function inspect(model: string, seqLen: number): Promise<ModelOverview> {
  const { api } = await import('../api/index.js');
  return api.call('inspectModel', { model, seqLen });
}

/** Types `value` into an estimate field, as the user does. */
function typeEstimate(root: HTMLElement, id: string, value: string): HTMLInputElement {
  const input = byId(root, id) as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
  return input;
}

describe('the estimate\'s fields take what training takes', () => {
  it('any whole sequence length from the run\'s least to the model\'s positions; beyond them the page refuses it in the form\'s words', async () => {
    const { root, studio } = await renderWithDemo();
    const positions = (await openModelFolder(harness.demo.model)).spec.maxPositionEmbeddings;
    await until('the limits', () => byId(root, 'estimate-seq-limit') !== null);
    expect(byId(root, 'estimate-seq-limit')!.textContent).toBe(`Sequence length: ${SETTING_LIMITS.seqLen.min} to ${positions}, the positions this model has.`);
    // lengths training accepts that are no multiple of 8: valid in the field, and estimated
    for (const length of [100, 250, SETTING_LIMITS.seqLen.min, positions]) {
      const seq = typeEstimate(root, 'estimate-seq', String(length));
      expect(seq.validity.valid, String(length)).toBe(true);
      byId(root, 'estimate-apply')!.click();
      await until(`the estimate for ${length}`, () => studio.overview!.report.settings.seq_len === length && byId(root, 'estimate-apply')!.hasAttribute('disabled') === false);
      expect(byId(root, 'estimate-error')).toBeNull();
    }
    // one more than the positions, or fewer than the run takes: the field's own error, nothing estimated
    for (const [length, error] of [[positions + 1, `Must be at most ${positions}.`], [SETTING_LIMITS.seqLen.min - 1, `Must be at least ${SETTING_LIMITS.seqLen.min}.`]] as const) {
      const seq = typeEstimate(root, 'estimate-seq', String(length));
      expect(seq.validity.valid, String(length)).toBe(false);
      byId(root, 'estimate-apply')!.click();
      flushSync();
      expect(byId(root, 'estimate-error')!.textContent).toBe(`Sequence length: ${error}`);
      expect(seq.getAttribute('aria-invalid')).toBe('true');
      expect(studio.overview!.report.settings.seq_len).toBe(positions);
    }
    // batch and rank: whole numbers of at least 1, as the run takes them
    typeEstimate(root, 'estimate-seq', String(positions));
    typeEstimate(root, 'estimate-batch', '0');
    byId(root, 'estimate-apply')!.click();
    flushSync();
    expect(byId(root, 'estimate-error')!.textContent).toBe(`Batch: Must be at least ${SETTING_LIMITS.batchSize.min}.`);
  }, 30_000);

  it('an estimate for a length training refuses says so instead of recommending a method that "fits"', async () => {
    const { root, studio } = await renderWithDemo();
    const positions = (await openModelFolder(harness.demo.model)).spec.maxPositionEmbeddings;
    expect(byId(root, 'estimate-refused')).toBeNull();
    // the service estimates what it is asked: every method "fits" 1000 tokens of the tiny demo
    const beyond = await inspect(harness.demo.model, 1000);
    expect(beyond.methods.every((m) => m.fits)).toBe(true);
    studio.overview = beyond;
    flushSync();
    expect(byId(root, 'estimate-refused')!.textContent).toBe(
      `Training refuses sequence length 1000 on this model: it has ${positions} positions. No method fits a length no run can have; estimate for ${positions} or less.`);
    expect(root.textContent).not.toContain('Recommended:');
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
    // until the page has its answer (a fixed sleep passed without it on a slow machine, proving nothing)
    await until('A answered', () => answered.has(a), 10_000);
    expect(studio.model).toBe(harness.demo.model);
    expect(byId(root, 'model-loading')?.textContent).toContain(b);

    openB();
    await until('the next step', () => studio.page !== 'model', 10_000);
    expect(studio.model).toBe(b);
    expect(studio.overview?.report.model).toBe(b);
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
