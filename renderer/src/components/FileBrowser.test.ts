// The in-page file browser (browser mode) rendered in jsdom against the real
// studio service in browser mode, allowed one work folder (plus, as
// `peft-studio serve` has them, the studio home and the bundled demo to read):
// it opens at a typed path's folder (or the nearest one above it that
// exists), shows the path's folders outside what may be browsed as text,
// not buttons, offers the tops it may browse as shortcuts, draws files and
// folders as icons (not squares), and puts Cancel before the main action.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { flushSync, type Component } from 'svelte';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

/** the one folder the service may browse, beside the studio home and the demo */
const work = mkdtempSync(join(tmpdir(), 'peft-studio-file-browser-work-'));
mkdirSync(join(work, 'a', 'b'), { recursive: true });
writeFileSync(join(work, 'a', 'b', 'data.jsonl'), '{"text":"hi"}\n');
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface BrowserProps {
  kind: 'folder' | 'file';
  title: string;
  start?: string | null;
  onchoose: (path: string) => void;
  oncancel: () => void;
}
interface PickerProps {
  kind: 'folder' | 'file';
  title: string;
  label: string;
  testid: string;
  onpick: (path: string) => void;
  onerror: (e: unknown) => void;
}

// jsdom has no modal dialogs
beforeAll(() => {
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) {
    this.open = true;
  };
});
const harness = pageHarness<BrowserProps>({
  homePrefix: 'peft-studio-file-browser-home-',
  allowedRoots: [work],
  load: () => import('./FileBrowser.svelte'),
});
let PathPicker: Component<PickerProps>;
beforeAll(async () => {
  PathPicker = (await import('./PathPicker.svelte')).default as unknown as Component<PickerProps>;
});


const all = (root: ParentNode, id: string) => [...root.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)];
/** the folder the browser shows: its last crumb's full path is not shown, so it is read from the entries' parent */
const shownFolder = (root: ParentNode) => all(root, 'file-browser-path')[0]?.textContent?.replace(/\s+/g, '') ?? '';
const crumbPath = (path: string) => ['/', ...path.split('/').filter(Boolean)].join('›');

function render(start: string | null, kind: 'folder' | 'file' = 'folder'): HTMLElement {
  return harness.mount({ kind, title: 'Choose', start, onchoose: () => {}, oncancel: () => {} });
}

describe('the file browser', () => {
  it('opened at the demo model: folders above the demo are text, not buttons; the work folder is a shortcut that opens', async () => {
    const root = render(harness.demo.model);
    await until('the listing', () => shownFolder(root) === crumbPath(harness.demo.model));
    const demoDir = dirname(harness.demo.model);
    // the demo folder is a top: learned by listing upwards
    await until('the tops', () => all(root, 'file-browser-place').length >= 2);
    const places = all(root, 'file-browser-place').map((b) => b.dataset.path);
    expect(places).toEqual(expect.arrayContaining([work, demoDir]));
    // only the demo folder and the model folder can be opened from the path
    await until('the crumbs', () => all(root, 'file-browser-crumb').length === 2);
    expect(all(root, 'file-browser-crumb').map((c) => c.textContent)).toEqual(['demo', 'model']);
    expect(all(root, 'file-browser-crumb-off').map((c) => c.textContent)).toEqual(crumbPath(dirname(demoDir)).split('›'));
    expect(all(root, 'file-browser-crumb-off').every((c) => c.tagName !== 'BUTTON')).toBe(true);

    all(root, 'file-browser-place').find((b) => b.dataset.path === work)!.click();
    await until('the work folder', () => shownFolder(root) === crumbPath(work));
    expect(all(root, 'file-browser-error')).toEqual([]);
    expect(all(root, 'file-browser-entry').map((e) => e.dataset.path)).toEqual([join(work, 'a')]);
  }, 30_000);

  it('opens at a typed folder that does not exist yet at the nearest folder above it', async () => {
    const root = render(join(work, 'a', 'b', 'new', 'deeper'));
    await until('the listing', () => shownFolder(root) === crumbPath(join(work, 'a', 'b')));
    expect(all(root, 'file-browser-entry').map((e) => e.dataset.path)).toEqual([join(work, 'a', 'b', 'data.jsonl')]);
  }, 30_000);

  it('opens at the work folder for a path outside what may be browsed', async () => {
    const root = render('/etc/ssl');
    await until('the listing', () => shownFolder(root).endsWith(crumbPath(work).split('›').pop()!));
    expect(shownFolder(root)).toBe(crumbPath(work));
  });

  it('draws files and folders as icons, and puts Cancel before the main action at the end of the footer', async () => {
    const root = render(join(work, 'a', 'b'), 'folder');
    await until('the listing', () => all(root, 'file-browser-entry').length === 1);
    const entry = all(root, 'file-browser-entry')[0];
    expect(entry.querySelector('svg.icon path.file')).not.toBeNull();
    const buttons = [...root.querySelectorAll('footer button')].map((b) => (b as HTMLElement).dataset.testid);
    expect(buttons).toEqual(['file-browser-cancel', 'file-browser-choose']);
    // the two buttons share a row of their own: the hint is a line above it, so it cannot wrap them apart
    const row = all(root, 'file-browser-cancel')[0].parentElement!;
    expect(all(root, 'file-browser-choose')[0].parentElement).toBe(row);
    expect(row.tagName).not.toBe('FOOTER');
    expect(row.querySelector('.hint')).toBeNull();
    expect(root.querySelector('footer .hint')?.textContent).toContain('Model folders');
  });
});

describe('Browse… of a path field', () => {
  it('opens at the folder typed into the field', async () => {
    const root = harness.mountComponent(PathPicker, { kind: 'file', title: 'Choose a dataset', label: 'Dataset', testid: 'p', onpick: () => {}, onerror: (e) => { throw e; } });
    flushSync();
    const input = root.querySelector<HTMLInputElement>('[data-testid="p-input"]')!;
    input.value = join(work, 'a', 'b', 'other.jsonl');
    input.dispatchEvent(new Event('input', { bubbles: true }));
    flushSync();
    root.querySelector<HTMLButtonElement>('[data-testid="p-browse"]')!.click();
    await until('the browser', () => shownFolder(root) === crumbPath(join(work, 'a', 'b')));
  }, 30_000);

  it('gives the focus back to Browse… when the browser closes: Escape, Cancel, or a file chosen', async () => {
    const picked: string[] = [];
    const root = harness.mountComponent(PathPicker, { kind: 'file', title: 'Choose a dataset', label: 'Dataset', testid: 'p', onpick: (p) => void picked.push(p), onerror: (e) => { throw e; } });
    flushSync();
    const browse = root.querySelector<HTMLButtonElement>('[data-testid="p-browse"]')!;
    const input = root.querySelector<HTMLInputElement>('[data-testid="p-input"]')!;
    input.value = join(work, 'a', 'b', 'data.jsonl');
    input.dispatchEvent(new Event('input', { bubbles: true }));
    flushSync();
    /** opens the browser from a focused Browse…; the focus then is inside it, as a modal dialog puts it */
    const open = async () => {
      browse.focus();
      browse.click();
      await until('the listing', () => all(root, 'file-browser-entry').length === 1);
      all(root, 'file-browser-entry')[0].focus();
      expect(document.activeElement).toBe(all(root, 'file-browser-entry')[0]);
    };
    const closed = () => until('the browser closed', () => all(root, 'file-browser').length === 0);

    await open();
    // Escape on a modal dialog is its cancel event
    all(root, 'file-browser')[0].dispatchEvent(new Event('cancel', { cancelable: true }));
    await closed();
    await until('the focus back on Browse…', () => document.activeElement === browse, 5_000);

    await open();
    all(root, 'file-browser-cancel')[0].click();
    await closed();
    await until('the focus back on Browse…', () => document.activeElement === browse, 5_000);

    await open();
    all(root, 'file-browser-entry')[0].click();
    await closed();
    expect(picked).toEqual([join(work, 'a', 'b', 'data.jsonl')]);
    await until('the focus back on Browse…', () => document.activeElement === browse, 5_000);
  }, 30_000);
});
