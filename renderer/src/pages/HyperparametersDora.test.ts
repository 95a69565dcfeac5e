// The DoRA toggle of the Hyperparameters step, rendered in jsdom against the
// real studio service on the bundled demo model: beside rank-stabilized LoRA
// with what it does and costs, and once on, in the "Before it starts" check's
// request (its config and estimate follow) and in startRun's hyper. The
// bridge only records what the page sends; every answer is the service's.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { RunSettings } from '../../../electron/api/contract.js';
import { formatCount } from '../format.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import { recordingBridge } from '../testing/service-bridge.js';

/** every call the page made, with its request as it went over the bridge */
const sent: { method: string; request: unknown }[] = [];
const requestsOf = (method: string) => sent.filter((c) => c.method === method).map((c) => c.request as RunSettings);

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-dora-',
  allowedRoots: null,
  bridge: recordingBridge(sent),
  load: () => import('./Hyperparameters.svelte'),
});

const HELP = 'DoRA (weight-decomposed LoRA): also learns a magnitude for each output of every adapted layer. Often closer to full fine-tuning at low rank; each step is slower (one more product per layer).';

describe('the DoRA toggle', () => {
  it('sits beside rank-stabilized LoRA, says what it does; on, it reaches the check before the start and startRun', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 2, threads: 1 };
    const root = harness.mount({ studio });
    await until('the first check', () => studio.check !== null && byId(root, 'check-pending') === null);
    const plain = studio.check!;
    expect(plain.config!.lora!.dora).toBe(false);

    const toggle = byId(root, 'input-dora') as HTMLInputElement;
    expect(toggle.type).toBe('checkbox');
    expect(toggle.checked).toBe(false);
    expect(root.querySelector(`label[for="${toggle.id}"]`)!.textContent).toBe('DoRA');
    expect(byId(root, 'field-rslora')!.nextElementSibling).toBe(byId(root, 'field-dora'));
    expect(byId(root, 'hyper-advanced')!.contains(toggle)).toBe(true);
    const help = document.getElementById(`${toggle.id}-help`)!.textContent!.replace(/\s+/g, ' ').trim();
    expect(help.startsWith(HELP)).toBe(true);
    expect(help).toContain('Default: off.');

    toggle.click();
    flushSync();
    expect(studio.hyper).toEqual({ steps: 2, threads: 1, dora: true });
    expect(byId(root, 'reset-dora')).not.toBeNull();
    // the check the page asks for now carries it, and the service's verdict is for a DoRA run
    await until('the DoRA check', () => studio.check !== plain && byId(root, 'check-pending') === null);
    expect(requestsOf('checkRun').at(-1)!.hyper).toEqual({ steps: 2, threads: 1, dora: true });
    expect(studio.check!.errors).toEqual([]);
    expect(studio.check!.config!.lora!.dora).toBe(true);
    // one more trained vector per adapted linear: more trainable parameters than the same LoRA, shown as the service counted them
    expect(studio.check!.memory!.trainableParams).toBeGreaterThan(plain.memory!.trainableParams);
    expect(byId(root, 'trainable-params')!.textContent).toBe(formatCount(studio.check!.memory!.trainableParams));

    await until('start enabled', () => !(byId(root, 'start-training') as HTMLButtonElement).disabled);
    (byId(root, 'start-training') as HTMLButtonElement).click();
    await until('the run started', () => studio.runId !== null);
    const started = requestsOf('startRun');
    expect(started).toHaveLength(1);
    expect(started[0].hyper).toEqual({ steps: 2, threads: 1, dora: true });
    expect(started[0].method).toBe('lora');
  }, 60_000);

  it('off again: back to its default, so the run settings leave it out', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { dora: true };
    const root = harness.mount({ studio });
    await until('the form', () => byId(root, 'input-dora') !== null);
    const toggle = byId(root, 'input-dora') as HTMLInputElement;
    expect(toggle.checked).toBe(true);
    toggle.click();
    flushSync();
    expect(studio.hyper).toEqual({});
    expect(studio.runSettings!.hyper).toEqual({});
  }, 60_000);
});
