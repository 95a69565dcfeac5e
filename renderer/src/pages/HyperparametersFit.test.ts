// The settings that would fit, on the Hyperparameters step, rendered in jsdom
// against the real studio service on the bundled demo model: a run over any
// RAM comes with buttons ("Use batch size 2194, gradient accumulation 28
// (22.6 GiB; …)"); one sets those fields as typing would, and the check runs
// again on them, its estimate the one the button said. One that changes the
// method switches it (the QLoRA form loads) and keeps the fields it sets.
// The bridge only records what the page sends; every answer is the service's.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { RunSettings } from '../../../electron/api/contract.js';
import { formatBytes } from '../format.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import { manyRowsFile } from '../../../electron/testing/many-rows.js';
import { recordingBridge } from '../testing/service-bridge.js';

/** every call the page made, with its request as it went over the bridge */
const sent: { method: string; request: unknown }[] = [];
const checksSent = () => sent.filter((c) => c.method === 'checkRun').map((c) => c.request as RunSettings);

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-fit-',
  allowedRoots: null,
  bridge: recordingBridge(sent),
  load: () => import('./Hyperparameters.svelte'),
});

const inputValue = (root: HTMLElement, key: string) => (byId(root, `input-${key}`) as HTMLInputElement).value;

describe('the settings that would fit', () => {
  it('a button per alternative; one click sets its fields and the check runs again on them', async () => {
    const studio = demoLoraStudio(harness.demo);
    // 30000 rows of 256 tokens (a batch holds no more rows than the data has): far over any test machine's RAM (the CPU, so the budget is the RAM on any machine)
    studio.data = await manyRowsFile(799);
    studio.hyper = { steps: 1, batchSize: 30000, device: 'cpu' };
    const root = harness.mount({ studio });
    await until('the first verdict', () => studio.check !== null && byId(root, 'check-pending') === null);
    expect(studio.check!.memory!.fits).toBe(false);
    const [batch] = studio.check!.alternatives;
    const b = batch.hyper.batchSize!;
    const accum = batch.hyper.gradAccum!;
    expect(b).toBeLessThan(30000);
    expect(accum).toBe(Math.ceil(30000 / b));

    // one button each, in the service's order, saying what it sets and what the run would then need
    const buttons = [...byId(root, 'fit-alternatives')!.querySelectorAll('button')];
    expect(buttons.map((x) => x.dataset.testid)).toEqual(studio.check!.alternatives.map((_, i) => `fit-alternative-${i}`));
    const words = `Use batch size ${b}, gradient accumulation ${accum} (${formatBytes(batch.totalBytes)}${batch.detail ? `; ${batch.detail}` : ''})`;
    expect(buttons[0].textContent!.replace(/\s+/g, ' ').trim()).toBe(words);
    expect(buttons[0].disabled).toBe(false);

    const before = studio.check;
    const sentBefore = checksSent().length;
    buttons[0].click();
    flushSync();
    // the fields read as if typed, the run's settings hold them
    expect(inputValue(root, 'batchSize')).toBe(String(b));
    expect(inputValue(root, 'gradAccum')).toBe(String(accum));
    expect(studio.hyper).toEqual({ steps: 1, batchSize: b, gradAccum: accum, device: 'cpu' });
    // the check runs again on them: its estimate is the one the button said
    await until('the check of the alternative', () => studio.check !== before && byId(root, 'check-pending') === null);
    expect(checksSent().length).toBeGreaterThan(sentBefore);
    expect(checksSent().at(-1)!.hyper).toEqual({ steps: 1, batchSize: b, gradAccum: accum, device: 'cpu' });
    expect(studio.check!.config).toMatchObject({ batchSize: b, gradAccum: accum });
    expect(studio.check!.memory!.totalBytes).toBe(batch.totalBytes);
  }, 60_000);

  it('one that changes the method switches to it, loads its form, and keeps the fields it sets', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 1, rank: 4, device: 'cpu' };
    const root = harness.mount({ studio });
    await until('the first verdict', () => studio.check !== null && byId(root, 'check-pending') === null);
    expect(byId(root, 'field-quantBlocksize')).toBeNull();
    // the verdict as it reads on a machine this LoRA run does not fit, with QLoRA and checkpointing as the way out
    studio.check = {
      ...studio.check!, ok: false, memory: { ...studio.check!.memory!, availableBytes: 1024, fits: false },
      alternatives: [{ label: 'gradient checkpointing with QLoRA on a 4-bit base', detail: null, method: 'qlora', hyper: { gradientCheckpointing: true }, totalBytes: 1000 }],
    };
    flushSync();
    const button = byId(root, 'fit-alternative-0') as HTMLButtonElement;
    expect(button.textContent!.trim()).toBe('Use gradient checkpointing with QLoRA on a 4-bit base (1000 B)');
    const sentBefore = checksSent().length;
    button.click();
    await until('the QLoRA form and its check', () => byId(root, 'field-quantBlocksize') !== null && checksSent().length > sentBefore && byId(root, 'check-pending') === null && studio.check?.config?.method === 'qlora');
    expect(studio.method).toBe('qlora');
    expect(root.querySelector('section > p.muted')!.textContent).toContain('Defaults for QLoRA on this model.');
    expect((byId(root, 'input-gradientCheckpointing') as HTMLInputElement).checked).toBe(true);
    // the LoRA rank carries over to QLoRA; the request and the service's config are QLoRA with checkpointing
    expect(studio.hyper).toEqual({ steps: 1, rank: 4, device: 'cpu', gradientCheckpointing: true });
    expect(checksSent().at(-1)).toMatchObject({ method: 'qlora', hyper: { steps: 1, rank: 4, device: 'cpu', gradientCheckpointing: true } });
    expect(studio.check!.config).toMatchObject({ method: 'qlora', gradientCheckpointing: true, quantization: { type: 'nf4' } });
  }, 60_000);
});
