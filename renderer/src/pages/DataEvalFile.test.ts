// The Data step's optional evaluation file, rendered in jsdom against the real
// studio service on the bundled demo model: the held-out task file is read
// as the dataset is (its rows counted by the service's own reader), the run's
// settings carry it (and no eval split beside it); a file with a bad row
// names the row; a missing file is said and not used; it can be removed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { afterAll, describe, expect, it } from 'vitest';

import type { RunCheck } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-data-eval-page-',
  allowedRoots: null,
  load: () => import('./Data.svelte'),
});
const files = mkdtempSync(join(tmpdir(), 'peft-studio-eval-files-'));
afterAll(() => rmSync(files, { recursive: true, force: true }));
const bundled = (name: string) => harness.demo.datasets.find((d) => d.name === name)!.path;
const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim();

/** The page with the bundled training data read, as a user finds it after choosing the dataset. */
async function render(): Promise<{ root: HTMLElement; studio: Studio }> {
  const studio = new Studio();
  studio.model = harness.demo.model;
  studio.method = 'lora';
  studio.data = bundled('task-train');
  const root = harness.mount({ studio });
  flushSync();
  await until('the dataset report', () => studio.dataReport !== null && byId(root, 'eval-data') !== null);
  return { root, studio };
}

/** Types a path into the evaluation file field and presses "Use this path". */
function useEvalPath(root: HTMLElement, path: string): void {
  const input = byId(root, 'eval-picker-input') as HTMLInputElement;
  input.value = path;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
  (byId(root, 'eval-picker-use') as HTMLButtonElement).click();
  flushSync();
}

describe('the Data page: evaluation file', () => {
  it('reads the chosen file as the dataset is read, and the run settings carry it instead of an eval split', async () => {
    const { root, studio } = await render();
    expect(byId(root, 'eval-report')).toBeNull();
    expect(studio.runSettings!.evalData).toBeUndefined();
    const evalFile = bundled('task-eval');
    useEvalPath(root, evalFile);
    await until('the evaluation report', () => byId(root, 'eval-report') !== null);
    const rows = readFileSync(evalFile, 'utf8').trim().split('\n').length;
    expect(studio.evalData).toBe(evalFile);
    expect(text(root, 'eval-rows-total')).toBe(String(rows));
    expect(text(root, 'eval-rows-used')).toBe(String(rows));
    expect(text(root, 'eval-rows-skipped')).toBe('0');
    const { tokens } = studio.evalReport!;
    expect(tokens.trained).toBeLessThan(tokens.total); // answers only, as the dataset
    expect(text(root, 'eval-tokens')).toMatch(new RegExp(`^${tokens.trained.toLocaleString('en-US')} scored of ${tokens.total.toLocaleString('en-US')} \\(`));

    studio.hyper = { evalSplit: 0.2, evalEvery: 5 };
    const settings = studio.runSettings!;
    expect(settings.evalData).toBe(evalFile);
    expect(settings.hyper).toEqual({ evalEvery: 5 });
    // the run the service would start from these settings evaluates on the file
    const check = await harness.service.call('checkRun', settings);
    expect(check.ok && (check.value as RunCheck).config).toMatchObject({ evalData: evalFile, evalSplit: 0 });

    (byId(root, 'eval-remove') as HTMLButtonElement).click();
    flushSync();
    expect(studio.evalData).toBeNull();
    expect(byId(root, 'eval-report')).toBeNull();
    expect(studio.runSettings!.evalData).toBeUndefined();
    expect(studio.runSettings!.hyper).toEqual({ evalSplit: 0.2, evalEvery: 5 });
  }, 60_000);

  it('a skipped row is listed with its line; a missing file is said and not used', async () => {
    const { root, studio } = await render();
    const file = join(files, 'valid.jsonl');
    writeFileSync(file, '{"prompt": "Question: a?\\nAnswer:", "completion": " b"}\n{"prompt": 3}\n{"prompt": "Question: c?\\nAnswer:", "completion": " d"}\n');
    useEvalPath(root, file);
    await until('the evaluation report', () => byId(root, 'eval-report') !== null);
    expect(text(root, 'eval-rows-used')).toBe('2');
    expect(text(root, 'eval-rows-skipped')).toBe('1');
    const skipped = root.querySelectorAll('[data-testid="eval-skipped-row"]');
    expect(skipped).toHaveLength(1);
    expect(skipped[0].textContent).toContain('valid.jsonl:2');
    // the dataset's own table is another one
    expect(root.querySelectorAll('[data-testid="data-skipped-row"]')).toHaveLength(0);

    const missing = join(files, 'gone.jsonl');
    useEvalPath(root, missing);
    await until('the error', () => byId(root, 'eval-error') !== null);
    expect(text(root, 'eval-error')).toContain(missing);
    expect(text(root, 'eval-error')).toContain(`Still using the previous evaluation file: ${file}`);
    expect(studio.evalData).toBe(file);
    // Next with the missing file still in the field: the page stays (the run would not evaluate on what the field shows)
    studio.page = 'data';
    (byId(root, 'data-next') as HTMLButtonElement).click();
    await until('the read of the field', () => byId(root, 'eval-loading') === null && byId(root, 'eval-error') !== null);
    await new Promise((r) => setTimeout(r, 50));
    expect(studio.page).toBe('data');

    // the file in use, gone when read again under new settings: no longer used
    rmSync(file);
    (byId(root, 'data-pack') as HTMLInputElement).click();
    flushSync();
    await until('the failed read', () => studio.evalData === null);
    expect(studio.evalReport).toBeNull();
    expect(text(root, 'eval-error')).toContain('No evaluation file is used.');
  }, 60_000);
});
