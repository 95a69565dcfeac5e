// What the run writes to its disk, on the Hyperparameters step, rendered in
// jsdom against the real studio service on the bundled demo model: a run
// that keeps a checkpoint of every one of a billion steps writes petabytes,
// more than any test machine's disk has free, so its check says so, Start
// waits for "start anyway", and the request then carries ignoreDiskCheck; a
// run that saves nothing fits and shows no such box. The free space shown is
// the service's statfs of the output folder's disk, checked against df(1).
import { execFileSync } from 'node:child_process';
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import { formatBytes } from '../format.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';
import type { PreloadBridge, RunSettings } from '../../../electron/api/contract.js';

/** the startRun requests the page sent; the service never gets them (a billion-step run is not started) */
const starts: RunSettings[] = [];
const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-disk-',
  allowedRoots: null,
  bridge: (bridge) => ({
    ...bridge,
    call: (async (method, request) => {
      if (method !== 'startRun') return bridge.call(method, request);
      starts.push(request as RunSettings);
      throw new Error('not started by this test');
    }) as PreloadBridge['call'],
  }),
  load: () => import('./Hyperparameters.svelte'),
});

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? null;
const startButton = (root: HTMLElement) => byId(root, 'start-training') as HTMLButtonElement;

describe('the disk check before a run starts', () => {
  it('a run that writes more than the disk has free: said with its parts, and Start waits for "start anyway"', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 1_000_000_000, saveEvery: 1, keepCheckpoints: 0, device: 'cpu' };
    const root = harness.mount({ studio });
    await until('the first verdict', () => studio.check !== null && byId(root, 'check-pending') === null, 60_000);
    const check = studio.check!;
    expect(check.errors).toEqual([]);
    expect(check.memory!.fits).toBe(true);
    const disk = check.disk!;
    expect(disk.fits).toBe(false);
    expect(disk.checkpointsAtOnce).toBe(1_000_000_000);
    // a checkpoint holds the adapter, AdamW's two fp32 moments of every trained parameter (and their file's header), a few small files
    const beside = disk.checkpointBytes - check.memory!.adapterBytes - 8 * check.memory!.trainableParams;
    expect(beside).toBeGreaterThan(4096);
    expect(beside).toBeLessThan(4096 + 16 * 1024);
    expect(disk.needBytes).toBeGreaterThan(1_000_000_000 * disk.checkpointBytes);
    // the free space is the output folder's disk's, as df says (the tests write beside it meanwhile: within 64 MiB)
    const out = check.config!.out;
    // (the run folder is planned in the studio home: its nearest folder that exists)
    expect(out.startsWith(harness.home)).toBe(true);
    const df = Number(execFileSync('df', ['--output=avail', '-B1', harness.home], { encoding: 'utf8' }).split('\n')[1]);
    expect(Math.abs(disk.freeBytes! - df)).toBeLessThan(64 * 2 ** 20);

    expect(text(root, 'disk-need')).toBe(`writes about ${formatBytes(disk.needBytes)}, ${formatBytes(disk.freeBytes!)} free on the output folder's disk (${disk.parts}) does not fit`);
    expect(disk.parts).toMatch(/^1,000,000,000 checkpoints of \S+ \S+ at once, the adapter \S+ \S+, metrics and run files \S+ \S+$/);
    expect(text(root, 'check-verdict')).toContain(`Does not fit on the disk: ${out}: the run writes about`);
    expect(text(root, 'check-verdict')).toMatch(/or start the app with PEFT_STUDIO_HOME on a disk with room \(where it keeps its runs\); or start anyway\.$/);

    // Start only once the box is ticked; the request then says so
    expect(startButton(root).disabled).toBe(true);
    expect(byId(root, 'ignore-memory')).toBeNull();
    const box = byId(root, 'ignore-disk') as HTMLInputElement;
    box.click();
    flushSync();
    expect(startButton(root).disabled).toBe(false);
    startButton(root).click();
    await until('the start request', () => starts.length === 1);
    expect(starts[0]).toMatchObject({ ignoreDiskCheck: true, ignoreMemoryCheck: false });
  }, 120_000);

  it('on a GPU, RAM beside it that is short is a memory problem too: its box, then Start (the service and the run refuse it without)', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 2, device: 'cpu' };
    const root = harness.mount({ studio });
    await until('the first verdict', () => studio.check !== null && byId(root, 'check-pending') === null, 60_000);
    // the verdict as a GPU machine with little RAM answers it: the GPU's memory fits, the RAM beside it does not
    studio.check = { ...studio.check!, ok: false, memory: { ...studio.check!.memory!, fits: true, hostRam: { needBytes: 2 ** 30, availableBytes: 2 ** 29, fits: false } } };
    flushSync();
    expect(startButton(root).disabled).toBe(true);
    (byId(root, 'ignore-memory') as HTMLInputElement).click();
    flushSync();
    expect(startButton(root).disabled).toBe(false);
    expect(byId(root, 'ignore-disk')).toBeNull();
  }, 120_000);

  it('a run that saves no checkpoint fits: its line says so, and no box', async () => {
    const studio = demoLoraStudio(harness.demo);
    studio.hyper = { steps: 1, device: 'cpu' };
    const root = harness.mount({ studio });
    await until('the first verdict', () => studio.check !== null && byId(root, 'check-pending') === null, 60_000);
    const disk = studio.check!.disk!;
    // one step: no stop can come between steps, so no checkpoint at all
    expect(disk).toMatchObject({ fits: true, checkpointsAtOnce: 0 });
    expect(studio.check!.ok).toBe(true);
    expect(text(root, 'disk-need')).toMatch(/ \(the adapter \S+ \S+, metrics and run files \S+ \S+\) fits$/);
    expect(byId(root, 'ignore-disk')).toBeNull();
    expect(startButton(root).disabled).toBe(false);
  }, 120_000);
});
