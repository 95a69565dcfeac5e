// The Hyperparameters step's limits and refusals as the user reads them,
// rendered in jsdom against the real studio service on the bundled demo
// model: an exclusive bound is said as one under its field ("more than 0",
// "0 up to but not including 1") and the value on it is the form's own error,
// never sent; a refusal of a setting of another page (packing under prompt
// tuning) names it with its page, not by the request's key.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { RunSettings } from '../../../electron/api/contract.js';
import type { Studio } from '../state/studio.svelte.js';
import { byId, type, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import { recordingBridge } from '../testing/service-bridge.js';

const sent: { method: string; request: unknown }[] = [];
const requestsOf = (method: string) => sent.filter((c) => c.method === method).map((c) => c.request as RunSettings);

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-limits-',
  allowedRoots: null,
  bridge: recordingBridge(sent),
  load: () => import('./Hyperparameters.svelte'),
});

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? null;
const help = (key: string) => document.getElementById(`hyper-${key}-help`)!.textContent!.replace(/\s+/g, ' ').trim();

describe('exclusive bounds on the Hyperparameters page', () => {
  it('LoRA alpha, LoRA dropout and Eval split say what the run takes; the bound itself is refused before it is sent', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 2, threads: 1 };
    const root = harness.mount({ studio });
    await until('the first check', () => studio.check !== null && byId(root, 'check-pending') === null);

    expect(help('alpha')).toMatch(/Default: \d+; more than 0\.$/);
    expect(help('dropout')).toMatch(/Default: [\d.]+; 0 up to but not including 1\.$/);
    expect(help('evalSplit')).toMatch(/Default: [\d.]+; 0 up to but not including 1\.$/);
    const checks = requestsOf('checkRun').length;
    for (const [key, value, error] of [['alpha', '0', 'Must be more than 0.'], ['dropout', '1', 'Must be less than 1.'], ['evalSplit', '1', 'Must be less than 1.']]) {
      const before = (byId(root, `input-${key}`) as HTMLInputElement).value;
      type(root, `input-${key}`, value);
      flushSync();
      expect(text(root, `error-${key}`), key).toBe(error);
      expect(studio.hyper, key).toEqual({ steps: 2, threads: 1 });
      type(root, `input-${key}`, before);
      flushSync();
      expect(text(root, `error-${key}`), key).toBe('');
    }
    // the values on the bounds were never sent for a check
    expect(requestsOf('checkRun').slice(checks).some((r) => r.hyper.alpha === 0 || r.hyper.dropout === 1 || r.hyper.evalSplit === 1)).toBe(false);
    harness.unmount();
  });
});

describe('a refusal of another page\'s setting', () => {
  it('packing under prompt tuning: named "Pack short rows" on the Data page, without the request\'s key', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.method = 'prompt';
    studio.pack = true;
    studio.hyper = { steps: 2, threads: 1 };
    const root = harness.mount({ studio });
    await until('the refusal', () => studio.check !== null && byId(root, 'check-pending') === null && byId(root, 'check-errors') !== null);
    const shown = text(root, 'check-errors')!;
    expect(shown).toBe('"Pack short rows" (Data page) cannot be used with the method prompt: prompt tuning prepends the virtual tokens to each sequence, so every document needs its own row. ' +
      'Untick "Pack short rows" on the Data page, or choose prefix tuning or LoRA on the Method page (they can pack)');
    expect(text(root, 'check-verdict')).toBe(`Cannot start: ${shown}`);
    harness.unmount();
  });
});
