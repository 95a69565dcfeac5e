// The Model step rendered in jsdom against the real studio service (in this
// process, behind the preload bridge the desktop app has): the model field
// is what Next goes on with. A typed folder is marked "not used yet"; Next
// reads it first and stays on the page with its error when it is no model;
// leaving the field reads it too.
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushSync, mount, unmount, type Component } from 'svelte';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { DemoPaths } from '../../../electron/api/contract.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { Studio } from '../state/studio.svelte.js';
import { serviceBridge } from '../testing/service-bridge.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-model-page-'));
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
let Model: Component<{ studio: Studio }>;
let component: ReturnType<typeof mount> | null = null;

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  // the app's api module picks the preload bridge when there is one: set it before the page is loaded
  window.peftStudio = serviceBridge(service, () => []);
  Model = (await import('./Model.svelte')).default as unknown as Component<{ studio: Studio }>;
  const paths = await service.call('demoPaths', {});
  if (!paths.ok) throw new Error(JSON.stringify(paths.error));
  demo = paths.value as DemoPaths;
});
afterEach(() => {
  if (component) void unmount(component);
  component = null;
  document.body.innerHTML = '';
});
afterAll(async () => {
  await service.close();
  rmSync(home, { recursive: true, force: true });
});

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    flushSync();
    if (cond()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const byId = (root: HTMLElement, id: string) => root.querySelector<HTMLElement>(`[data-testid="${id}"]`);

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
  const root = document.createElement('div');
  document.body.append(root);
  component = mount(Model, { target: root, props: { studio } });
  await until('the demo button', () => !(byId(root, 'model-demo') as HTMLButtonElement | null)?.disabled);
  byId(root, 'model-demo')!.click();
  await until('the demo model', () => byId(root, 'model-next') !== null && studio.model === demo.model);
  return { root, studio };
}

function modelCopy(name: string): string {
  const dir = join(home, name);
  cpSync(demo.model, dir, { recursive: true });
  return dir;
}

describe('the model field and Next', () => {
  it('Next with a typed folder that is no model stays on the page with its error; with a model it goes on with that one', async () => {
    const { root, studio } = await renderWithDemo();
    const notAModel = join(home, 'not-a-model');
    mkdirSync(notAModel, { recursive: true });
    type(root, notAModel);
    // typed, not used yet: the field says so
    expect(byId(root, 'model-picker-pending')?.textContent).toContain('Not used yet');
    expect(byId(root, 'model-picker-pending')?.textContent).toContain(demo.model);

    byId(root, 'model-next')!.click();
    await until('the error or the next step', () => byId(root, 'model-error') !== null || studio.page !== 'model');
    expect(studio.page).toBe('model');
    expect(byId(root, 'model-error')!.textContent).toContain(notAModel);
    expect(studio.model).toBe(demo.model);
    // the field still shows what was typed, so it can be corrected
    expect((byId(root, 'model-picker-input') as HTMLInputElement).value).toBe(notAModel);

    // put back the folder in use: Next goes on with it
    type(root, demo.model);
    byId(root, 'model-next')!.click();
    await until('the next step', () => studio.page !== 'model');
    expect(studio.model).toBe(demo.model);
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
});
