// The Hyperparameters step while an evaluation file is chosen (Data page),
// rendered in jsdom against the real studio service on the bundled demo
// model: the eval split field says it is not used and why, the service's
// check of the form accepts the run (an eval split typed before is not
// sent), and the split comes back as typed once the file is removed.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import { byId, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import type { Studio } from '../state/studio.svelte.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-eval-page-',
  allowedRoots: null,
  load: () => import('./Hyperparameters.svelte'),
});

describe('the eval split field with an evaluation file', () => {
  it('reads "not used", naming the file; the check passes with the file; without it the typed split is back', async () => {
    const studio = demoLoraStudio(harness.demo);
    const evalFile = harness.demo.datasets.find((d) => d.name === 'task-eval')!.path;
    studio.evalData = evalFile;
    studio.hyper = { evalSplit: 0.2 };
    const root = harness.mount({ studio });
    await until('the form', () => root.querySelector('[data-testid="field-evalSplit"]') !== null);
    await until('the first check', () => studio.check !== null);
    expect(byId(root, 'input-evalSplit')).toBeNull();
    expect(byId(root, 'eval-split-off')!.textContent!.replace(/\s+/g, ' ').trim()).toBe(`not used: the run evaluates on the evaluation file ${evalFile} (Data page)`);
    expect(studio.check!.errors).toEqual([]);
    expect(studio.check!.config).toMatchObject({ evalData: evalFile, evalSplit: 0 });

    studio.evalData = null;
    flushSync();
    expect(byId(root, 'eval-split-off')).toBeNull();
    expect((byId(root, 'input-evalSplit') as HTMLInputElement).value).toBe('0.2');
  }, 60_000);
});
