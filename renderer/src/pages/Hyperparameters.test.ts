// The Hyperparameters step rendered in jsdom against the real studio service
// (electron/service, in this process, behind the preload bridge the desktop
// app has), on the bundled demo model: the precision field. Where a GPU is
// chosen or found it is a select (auto, fp32, bf16) with the trade-off in one
// line; on the CPU it reads "fp32 (CPU)", and switching the device to the CPU
// drops a bf16 chosen for the GPU. This machine has no GPU, so the GPU case
// takes the form the service's own hyperparameterSpecs builds for a machine
// with an NVIDIA H200; every other call is the service's answer.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../../electron/engine/load.js';
import { whyUnusable } from '../../../electron/engine/device.js';
import type { DeviceInfo } from '../../../electron/engine/native.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, choose as chooseOption, type as typeInto, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';

const H200: DeviceInfo = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 150_000_000_000, freeBytes: 140_000_000_000, error: '' };
/** the GPUs the form is built for (the service's own answer when empty: this machine's) */
let gpus: DeviceInfo[] = [];

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-page-',
  allowedRoots: null,
  gpus: () => gpus,
  load: () => import('./Hyperparameters.svelte'),
});

async function render(): Promise<{ root: HTMLElement; studio: Studio }> {
  const studio = demoLoraStudio(harness.demo);
  const root = harness.mount({ studio });
  await until('the form', () => root.querySelector('[data-testid="field-precision"]') !== null);
  await until('the first check', () => studio.check !== null);
  return { root, studio };
}


/** The form's fields have test ids input-<key>. */
const choose = (root: HTMLElement, key: string, value: string) => chooseOption(root, `input-${key}`, value);

describe('the precision field', () => {
  it('is a choice where a GPU is found, with the trade-off in one line; on the CPU it reads fp32 (CPU)', async () => {
    gpus = [H200];
    const { root, studio } = await render();
    const select = byId(root, 'input-precision');
    expect(select?.tagName).toBe('SELECT');
    expect([...(select as HTMLSelectElement).options].map((o) => o.value)).toEqual(['auto', 'fp32', 'bf16']);
    expect((select as HTMLSelectElement).value).toBe('auto');
    expect(byId(root, 'precision-cpu-note')).toBeNull();
    expect(byId(root, 'field-precision')!.textContent).toContain('bf16: tensor cores, about half the memory traffic, activations kept in 16 bits; fp32: exact');
    expect([...(byId(root, 'input-device') as HTMLSelectElement).options].map((o) => o.value)).toEqual(['auto', 'cpu', 'cuda:0']);

    // bf16 for the GPU, then the CPU: the choice gives way to the note and bf16 is dropped (the CPU refuses it)
    choose(root, 'precision', 'bf16');
    expect(studio.hyper.precision).toBe('bf16');
    choose(root, 'device', 'cpu');
    expect(byId(root, 'input-precision')).toBeNull();
    expect(byId(root, 'precision-cpu-note')!.textContent).toBe('fp32 (CPU)');
    expect(studio.hyper).toEqual({ device: 'cpu' });
    // the check the page asks for then runs on the CPU in fp32, and says so
    await until('the CPU check', () => studio.check?.config?.device === 'cpu');
    expect(studio.check!.errors).toEqual([]);
    expect(studio.check!.precision).toEqual({ precision: 'fp32', reason: 'fp32: the CPU computes in fp32' });
    await until('the verdict', () => byId(root, 'check-precision')?.textContent === 'fp32: the CPU computes in fp32');
    // back to the GPU: the choice again, at its default
    choose(root, 'device', 'cuda:0');
    expect((byId(root, 'input-precision') as HTMLSelectElement).value).toBe('auto');
  }, 60_000);

  it('on a machine without a GPU (this one, as the service answers) it is the fp32 (CPU) note', async () => {
    if (loadAddon().devices().some((d) => whyUnusable(d) === null)) return; // a GPU machine: the first case is its own
    gpus = [];
    const { root, studio } = await render();
    expect(byId(root, 'input-precision')).toBeNull();
    expect(byId(root, 'precision-cpu-note')!.textContent).toBe('fp32 (CPU)');
    expect(byId(root, 'field-precision')!.textContent).toContain('bf16: tensor cores, about half the memory traffic, activations kept in 16 bits; fp32: exact');
    expect(studio.check!.precision).toEqual({ precision: 'fp32', reason: 'fp32: the CPU computes in fp32' });
    // on the CPU the backend's own part is its threads' scratch
    expect(byId(root, 'memory-breakdown')!.textContent).not.toContain('CUDA runtime');
    expect(byId(root, 'memory-breakdown')!.textContent).toMatch(/· CPU threads' scratch \d/);
    // the RAM is the budget itself: no line for the RAM beside a GPU
    expect(studio.check!.memory!.hostRam).toBeNull();
    expect(byId(root, 'memory-host')).toBeNull();
  }, 60_000);
});

const type = (root: HTMLElement, key: string, value: string) => typeInto(root, `input-${key}`, value);

describe('the page', () => {
  it('names the method by its display name', async () => {
    gpus = [];
    const { root } = await render();
    expect(root.querySelector('section > p.muted')!.textContent).toContain('Defaults for LoRA on this model.');
  }, 60_000);

  it('shows no memory estimate while a field is invalid: the last one was for other values', async () => {
    gpus = [];
    const { root, studio } = await render();
    await until('the verdict', () => byId(root, 'check-verdict') !== null && byId(root, 'check-pending') === null);
    expect(byId(root, 'memory-total')).not.toBeNull();
    // the estimate as it reads for a machine it does not fit (the service's verdict, with less memory):
    // the page offers to start anyway
    studio.check = { ...studio.check!, ok: false, memory: { ...studio.check!.memory!, availableBytes: 1024, fits: false } };
    flushSync();
    expect(byId(root, 'ignore-memory')).not.toBeNull();
    const before = studio.check;

    type(root, 'batchSize', '0');
    expect(byId(root, 'error-batchSize')!.hidden).toBe(false);
    // the old verdict is still what studio.check holds, but the page does not show it as current
    expect(studio.check).toBe(before);
    expect(byId(root, 'check-verdict')).toBeNull();
    expect(byId(root, 'memory-total')).toBeNull();
    expect(byId(root, 'ignore-memory')).toBeNull();
    expect(byId(root, 'check-waiting')!.textContent).toContain('No memory check while a field is invalid');
    expect((byId(root, 'start-training') as HTMLButtonElement).disabled).toBe(true);

    // fixed: a new check for the value on screen, and its verdict
    type(root, 'batchSize', '3');
    expect(byId(root, 'check-waiting')).toBeNull();
    await until('the new check', () => studio.check !== before && studio.check?.config?.batchSize === 3 && byId(root, 'check-pending') === null);
    expect(byId(root, 'check-verdict')!.textContent).toBe(studio.check!.verdict);
    expect(byId(root, 'memory-total')).not.toBeNull();
  }, 60_000);
});
