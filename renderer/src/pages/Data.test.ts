// The Data step rendered in jsdom against the real studio service (in this
// process, behind the preload bridge), on the bundled demo model and
// dataset and on files written here: the report in the app's words, a
// failed file that leaves the previous dataset chosen (and says so, once as
// an alert), and the mask preview's Row field checked against the rows.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { afterAll, describe, expect, it } from 'vitest';

import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-data-page-',
  allowedRoots: null,
  load: () => import('./Data.svelte'),
});
/** the files the tests write */
const files = mkdtempSync(join(tmpdir(), 'peft-studio-data-files-'));
afterAll(() => rmSync(files, { recursive: true, force: true }));
const taskTrain = () => harness.demo.datasets.find((d) => d.name === 'task-train')!.path;


const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim();

function render(): { root: HTMLElement; studio: Studio } {
  const studio = new Studio();
  studio.model = harness.demo.model;
  studio.method = 'lora';
  const root = harness.mount({ studio });
  flushSync();
  return { root, studio };
}

/** Types a path into the dataset field and presses "Use this path". */
function usePath(root: HTMLElement, path: string): void {
  const input = byId(root, 'data-picker-input') as HTMLInputElement;
  input.value = path;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
  (byId(root, 'data-picker-use') as HTMLButtonElement).click();
  flushSync();
}

async function useBundled(root: HTMLElement, studio: Studio): Promise<void> {
  await until('the bundled datasets', () => root.querySelector('[data-testid="data-demo-item"][data-name="task-train"]') !== null);
  root.querySelector<HTMLButtonElement>('[data-testid="data-demo-item"][data-name="task-train"]')!.click();
  await until('the report', () => studio.dataReport !== null && byId(root, 'data-loading') === null);
}

function typeRow(root: HTMLElement, value: string): void {
  const input = byId(root, 'preview-row') as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
  (byId(root, 'preview-go') as HTMLButtonElement).click();
  flushSync();
}

describe('the Data page', () => {
  it('words the report in the app\'s terms: the format by name, "answers only" where there are answers', async () => {
    const { root, studio } = await Promise.resolve(render());
    await useBundled(root, studio);
    expect(text(root, 'data-detected-format')).toMatch(/^Prompt and completion \(detected\) · /);
    expect(text(root, 'data-tokens-trained')).toMatch(/, answers only$/);
    expect(byId(root, 'data-completion-only-note')).toBeNull();
    const rows = studio.dataReport!.examples;
    expect(text(root, 'data-examples')).toBe(`${rows.toLocaleString('en-US')} rows of up to ${studio.dataReport!.seqLen} tokens`);
    // the Chat option names the field names the loader reads (TRL's prompt / completion message lists too)
    const chat = [...(byId(root, 'data-format') as HTMLSelectElement).options].find((o) => o.value === 'chat')!;
    expect(chat.textContent).toContain('messages, conversations, or prompt / completion message lists');
  }, 60_000);

  it('plain text: one row, every token trained, no "answers only"', async () => {
    const file = join(files, 'one-paragraph.txt');
    writeFileSync(file, 'The fox lives in the forest and eats berries.\n');
    const { root, studio } = render();
    usePath(root, file);
    await until('the report', () => studio.dataReport !== null && byId(root, 'data-loading') === null);
    expect(text(root, 'data-detected-format')).toMatch(/^Plain text \(detected\) · /);
    // every token but the first (BOS, which nothing before it predicts)
    expect(studio.dataReport!.tokens.trained).toBe(studio.dataReport!.tokens.total - 1);
    expect(text(root, 'data-tokens-trained')).not.toContain('answers only');
    expect(text(root, 'data-completion-only-note')).toBe('(plain text has no answers: every token is trained)');
    expect(text(root, 'data-examples')).toBe(`1 row of up to ${studio.dataReport!.seqLen} tokens`);
  }, 60_000);

  it('a file that fails to read leaves the previous dataset chosen, and says so once as an alert', async () => {
    const broken = join(files, 'no-usable-rows.jsonl');
    writeFileSync(broken, '{"prompt":"Q?","completion":""}\n{"prompt": oops}\n');
    const { root, studio } = render();
    await useBundled(root, studio);
    const good = studio.dataReport;

    usePath(root, broken);
    await until('the error', () => byId(root, 'data-error') !== null);
    // still the bundled dataset: its report, its path, the next step open
    expect(studio.data).toBe(taskTrain());
    expect(studio.dataReport).toBe(good);
    expect(byId(root, 'data-report')).not.toBeNull();
    expect(studio.reachable('hyperparameters')).toBe(true);
    const message = text(root, 'data-error')!;
    expect(message).toContain(`${broken}:2`);
    expect(message).toContain(`Still using the previous dataset: ${taskTrain()}`);
    // the banner (studio.error, role=alert in ErrorBanner) announces it; the page's copy is plain text
    expect(studio.error?.message.replace(/\s+/g, ' ').trim()).toBe(message);
    expect(byId(root, 'data-error')!.getAttribute('role')).toBeNull();
    expect(root.querySelectorAll('[role="alert"]')).toHaveLength(0);
  }, 60_000);

  it('Next with a typed file not used yet reads it first: stays with its error when it fails, goes on with it when it reads', async () => {
    const broken = join(files, 'next-broken.jsonl');
    writeFileSync(broken, '{"prompt": oops}\n');
    const good = join(files, 'next-good.txt');
    writeFileSync(good, 'The fox lives in the forest and eats berries.\n');
    const { root, studio } = render();
    await useBundled(root, studio);
    studio.page = 'data';

    // typed, then Next (Tab past "Use this path", Enter on Next): not the bundled file in use
    const input = byId(root, 'data-picker-input') as HTMLInputElement;
    input.value = broken;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    flushSync();
    (byId(root, 'data-next') as HTMLButtonElement).click();
    await until('the error or the next step', () => byId(root, 'data-error') !== null || studio.page !== 'data');
    expect(studio.page).toBe('data');
    expect(text(root, 'data-error')).toContain(broken);
    expect(studio.data).toBe(taskTrain());

    input.value = good;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    flushSync();
    (byId(root, 'data-next') as HTMLButtonElement).click();
    await until('the next step', () => studio.page !== 'data' || (byId(root, 'data-error') !== null && byId(root, 'data-loading') === null && studio.data !== taskTrain()));
    expect(studio.page).toBe('hyperparameters');
    expect(studio.data).toBe(good);
    expect(studio.dataReport?.rows.total).toBe(1);
  }, 60_000);

  it('a failed first file leaves no dataset', async () => {
    const broken = join(files, 'only-broken.jsonl');
    writeFileSync(broken, '{"prompt": oops}\n');
    const { root, studio } = render();
    usePath(root, broken);
    await until('the error', () => byId(root, 'data-error') !== null);
    expect(studio.dataReport).toBeNull();
    expect(text(root, 'data-error')).not.toContain('Still using');
  }, 60_000);

  it('checks the mask preview\'s Row against the rows there are, with a message', async () => {
    const { root, studio } = render();
    await useBundled(root, studio);
    const total = studio.dataReport!.rows.total;
    await until('the preview of row 1', () => byId(root, 'preview-status') !== null);
    const input = byId(root, 'preview-row') as HTMLInputElement;
    expect(byId(root, 'preview-row-error')!.hidden).toBe(true);

    for (const [typed, message] of [
      ['0', `There is no row 0. Rows are numbered from 1 to ${total}.`],
      [String(total + 1), `There is no row ${total + 1}. Rows are numbered from 1 to ${total}.`],
      ['1.5', `There is no row 1.5. Rows are numbered from 1 to ${total}.`],
      ['', `Enter a row number. Rows are numbered from 1 to ${total}.`],
    ]) {
      typeRow(root, typed);
      expect(text(root, 'preview-row-error'), typed).toBe(message);
      expect(byId(root, 'preview-row-error')!.hidden).toBe(false);
      expect(input.getAttribute('aria-invalid')).toBe('true');
      expect(input.value).toBe(typed); // the user's text stays to be corrected
    }

    typeRow(root, '2');
    await until('the preview of row 2', () => byId(root, 'preview-status')?.textContent?.includes(':2') === true && !byId(root, 'preview-go')!.hasAttribute('disabled'));
    expect(byId(root, 'preview-row-error')!.hidden).toBe(true);
    expect(input.getAttribute('aria-invalid')).toBe('false');
  }, 60_000);
});

describe('the Data page after the Hyperparameters page', () => {
  /** Leaves the page and opens it again on the same studio, as the wizard does. */
  function reopen(studio: Studio): HTMLElement {
    harness.unmount();
    const root = harness.mount({ studio });
    flushSync();
    return root;
  }

  it('reads the file again at the Sequence length set there; an unrelated setting reads nothing', async () => {
    const { root, studio } = render();
    await useBundled(root, studio);
    const first = studio.dataReport!;
    // at the default length no row is cut; one token under its longest row cuts some
    expect(first.truncation.rows).toBe(0);
    const cutAt = first.lengths.max - 1;

    studio.hyper = { ...studio.hyper, lr: 0.001 };
    let again = reopen(studio);
    await until('the preview', () => byId(again, 'preview-status') !== null);
    expect(studio.dataReport).toBe(first); // not read again

    studio.hyper = { ...studio.hyper, seqLen: cutAt };
    again = reopen(studio);
    await until('the report at the new length', () => studio.dataReport !== first && byId(again, 'data-loading') === null);
    expect(studio.dataReport!.seqLen).toBe(cutAt);
    expect(studio.dataReport!.truncation.rows).toBeGreaterThan(0);
    expect(text(again, 'data-examples')).toBe(`${studio.dataReport!.examples.toLocaleString('en-US')} rows of up to ${cutAt} tokens`);
  }, 60_000);

  it('a Sequence length no row can be read at: the error, and the way back to the default length', async () => {
    const { root, studio } = render();
    await useBundled(root, studio);
    const defaultLen = studio.dataReport!.seqLen;
    studio.hyper = { seqLen: 8 };
    const again = reopen(studio);
    await until('the failed read', () => byId(again, 'data-error') !== null);
    expect(studio.dataReport).toBeNull();
    expect(text(again, 'data-error')).toContain('none of its 111 rows can be used');
    expect(text(again, 'data-seqlen-note')).toBe('Read at the Sequence length set on the Hyperparameters page (8). Use the model\'s default sequence length');
    (byId(again, 'data-use-default-seqlen') as HTMLButtonElement).click();
    await until('the report at the default length', () => studio.dataReport !== null && byId(again, 'data-loading') === null);
    expect(studio.hyper.seqLen).toBeUndefined();
    expect(studio.dataReport!.seqLen).toBe(defaultLen);
    expect(byId(again, 'data-seqlen-note')).toBeNull();
  }, 60_000);
});
