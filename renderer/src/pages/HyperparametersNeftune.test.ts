// The NEFTune field of the Hyperparameters step, rendered in jsdom against
// the real studio service on the bundled demo model: an advanced number with
// what it does, 0 (off) by default; a value typed in reaches the "Before it
// starts" check (its config says it) and startRun's hyper; a negative one is
// the form's own error; back at 0 it is left out of the run settings. The
// bridge only records what the page sends; every answer is the service's.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { RunSettings } from '../../../electron/api/contract.js';
import type { Studio } from '../state/studio.svelte.js';
import { byId, type, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import { recordingBridge } from '../testing/service-bridge.js';

/** every call the page made, with its request as it went over the bridge */
const sent: { method: string; request: unknown }[] = [];
const requestsOf = (method: string) => sent.filter((c) => c.method === method).map((c) => c.request as RunSettings);

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-neftune-',
  allowedRoots: null,
  bridge: recordingBridge(sent),
  load: () => import('./Hyperparameters.svelte'),
});

const HELP = 'Adds small random noise to the input embeddings while training (NEFTune). Often improves instruction-following answers; ' +
  '5 is a common value, 0 turns it off. Nothing changes at evaluation or when the model answers.';
const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? null;

describe('the NEFTune field', () => {
  it('is an advanced number, off by default; 5 typed in reaches the check before the start and startRun', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 2, threads: 1 };
    const root = harness.mount({ studio });
    await until('the first check', () => studio.check !== null && byId(root, 'check-pending') === null);
    expect(studio.check!.config!.neftuneAlpha).toBe(0);

    const input = byId(root, 'input-neftuneAlpha') as HTMLInputElement;
    expect(input).not.toBeNull();
    expect(input.value).toBe('0');
    expect(root.querySelector(`label[for="${input.id}"]`)!.textContent).toBe('NEFTune noise (alpha)');
    expect(byId(root, 'hyper-advanced')!.contains(input)).toBe(true);
    const help = document.getElementById(`${input.id}-help`)!.textContent!.replace(/\s+/g, ' ').trim();
    expect(help.startsWith(HELP)).toBe(true);
    expect(help).toContain('Default: 0; 0 to 10000.');

    // a negative alpha is the form's own error, never sent
    type(root, 'input-neftuneAlpha', '-1');
    flushSync();
    expect(text(root, 'error-neftuneAlpha')).toBe('Must be at least 0.');
    expect(studio.hyper).toEqual({ steps: 2, threads: 1 });

    type(root, 'input-neftuneAlpha', '5');
    flushSync();
    expect(text(root, 'error-neftuneAlpha')).toBe('');
    expect(studio.hyper).toEqual({ steps: 2, threads: 1, neftuneAlpha: 5 });
    await until('the check with noise', () => studio.check?.config?.neftuneAlpha === 5 && byId(root, 'check-pending') === null);
    expect(requestsOf('checkRun').at(-1)!.hyper).toEqual({ steps: 2, threads: 1, neftuneAlpha: 5 });
    expect(studio.check!.errors).toEqual([]);

    await until('start enabled', () => !(byId(root, 'start-training') as HTMLButtonElement).disabled);
    (byId(root, 'start-training') as HTMLButtonElement).click();
    await until('the run started', () => studio.runId !== null);
    const started = requestsOf('startRun');
    expect(started).toHaveLength(1);
    expect(started[0].hyper).toEqual({ steps: 2, threads: 1, neftuneAlpha: 5 });
  }, 60_000);

  it('back at 0: its default, so the run settings leave it out', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { neftuneAlpha: 10 };
    const root = harness.mount({ studio });
    await until('the form', () => byId(root, 'input-neftuneAlpha') !== null);
    expect((byId(root, 'input-neftuneAlpha') as HTMLInputElement).value).toBe('10');
    type(root, 'input-neftuneAlpha', '0');
    flushSync();
    expect(studio.hyper).toEqual({});
    expect(studio.runSettings!.hyper).toEqual({});
  }, 60_000);
});
