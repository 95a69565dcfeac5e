// The Hyperparameters step's "Before it starts" card says how long the run
// would take (RunCheck.time), rendered in jsdom against the real studio
// service on the bundled demo model: the steps, the tokens and the estimate
// on this CPU, the same sentence the service computed.
import { describe, expect, it } from 'vitest';

import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-time-',
  allowedRoots: null,
  load: () => import('./Hyperparameters.svelte'),
});

describe('the time before the start', () => {
  it('shows the steps, tokens and estimate the check computed, on the CPU', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { ...studio.hyper, device: 'cpu', steps: 4 };
    const root = harness.mount({ studio });
    await until('the CPU check with its time', () => studio.check?.config?.device === 'cpu' && studio.check.time !== null);
    const time = studio.check!.time!;
    expect(time.steps).toBe(4);
    expect(time.seconds).toBeGreaterThan(0);
    await until('the time line', () => byId(root, 'check-time') !== null);
    const text = byId(root, 'check-time')!.textContent!.replace(/\s+/g, ' ').trim();
    expect(text.startsWith('4 steps, ')).toBe(true);
    expect(text.endsWith(`; ${time.text}`)).toBe(true);
    expect(time.text).toMatch(/^(about \d+ (h \d+ )?min|under a minute) on this CPU \(measured \d+ GFLOP\/s x 0\.\d\d for LoRA; an estimate, ±30%\)$/);

    // Start records the estimate for the run it started (the Train page holds the time left against it)
    await until('start enabled', () => !(byId(root, 'start-training') as HTMLButtonElement).disabled);
    (byId(root, 'start-training') as HTMLButtonElement).click();
    await until('the run started', () => studio.runId !== null);
    expect(studio.startEstimate).toEqual({ runDir: studio.runDir, text: time.text });
  }, 60_000);
});
