// Keep-best and early stopping on the Hyperparameters step, rendered in jsdom
// against the real studio service on the bundled demo model: off with the
// reason while the run does not evaluate during training (and then not sent,
// so the check passes), editable once it does, the threshold only with a
// patience; the service's check resolves what the form sent.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import { byId, type, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import type { Studio } from '../state/studio.svelte.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-early-stop-',
  allowedRoots: null,
  load: () => import('./Hyperparameters.svelte'),
});

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? null;

describe('keep-best and early stopping fields', () => {
  it('are off with the reason until the run evaluates during training, then set the run', async () => {
    const studio = demoLoraStudio(harness.demo);
    const root = harness.mount({ studio });
    await until('the form', () => root.querySelector('[data-testid="field-keepBest"]') !== null);
    await until('the first check', () => studio.check !== null);
    // no eval set
    for (const key of ['keepBest', 'earlyStop', 'earlyStopDelta']) {
      expect(byId(root, `input-${key}`)).toBeNull();
      expect(text(root, `eval-off-${key}`)).toBe('off: needs evaluation: choose an evaluation file on the Data page, or set Eval split above 0');
    }

    // an eval split, evaluated at the end only
    type(root, 'input-evalSplit', '0.2');
    flushSync();
    expect(text(root, 'eval-off-earlyStop')).toBe('off: needs Evaluate every above 0 (evaluating at the end only gives a single eval loss)');

    type(root, 'input-evalEvery', '2');
    flushSync();
    expect(byId(root, 'eval-off-keepBest')).toBeNull();
    expect(byId(root, 'input-earlyStop')).not.toBeNull();
    expect(text(root, 'eval-off-earlyStopDelta')).toBe('off: applies with an Early stopping patience');

    (byId(root, 'input-keepBest') as HTMLInputElement).click();
    type(root, 'input-earlyStop', '3');
    flushSync();
    type(root, 'input-earlyStopDelta', '0.01');
    await until('the check of the new settings', () => studio.check?.config?.earlyStop === 3 && studio.check.config.earlyStopDelta === 0.01);
    expect(studio.check!.errors).toEqual([]);
    expect(studio.check!.config).toMatchObject({ keepBest: true, earlyStop: 3, earlyStopDelta: 0.01, evalEvery: 2, evalSplit: 0.2 });

    // a patience of 0 is this form's own error
    type(root, 'input-earlyStop', '0');
    flushSync();
    expect(text(root, 'error-earlyStop')).toBe('Must be at least 1.');
    type(root, 'input-earlyStop', '3');

    // evaluation turned off again: the fields are off, and the run is not sent them (so it is not refused)
    type(root, 'input-evalEvery', '0');
    flushSync();
    expect(text(root, 'eval-off-keepBest')).toContain('needs Evaluate every above 0');
    expect(studio.runSettings!.hyper).not.toHaveProperty('keepBest');
    expect(studio.runSettings!.hyper).not.toHaveProperty('earlyStop');
    await until('the check without them', () => studio.check?.config !== null && studio.check?.config?.evalEvery === 0);
    expect(studio.check!.errors).toEqual([]);
    expect(studio.check!.config).toMatchObject({ keepBest: false, earlyStop: 0 });
  }, 60_000);
});
