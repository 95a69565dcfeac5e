// The Resume options, rendered in jsdom against the real studio service
// (electron/service, in this process, behind the preload bridge the desktop
// app has) on a real run of the bundled demo model, cancelled after its
// first steps. The Runs page shows the device and precision run.json
// recorded, the choices this machine lists, and "fp32 (CPU)" on the CPU;
// a GPU run (cuda:0, bf16, as a GPU machine records it) opened here gets the
// CPU preselected with the reason, and Resume continues it there: run.json
// then records cpu / fp32. The GPU machine cases take the choices the
// service's own hyperparameterSpecs builds for an NVIDIA H200 (this machine
// has none); every other answer, the refusals included, is the service's.
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flushSync, type Component } from 'svelte';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ApiError, type ApiEvent, type ApiTransport } from '../../../electron/api/contract.js';
import { loadAddon } from '../../../electron/engine/load.js';
import { whyUnusable } from '../../../electron/engine/device.js';
import type { DeviceInfo } from '../../../electron/engine/native.js';
import { recordInIndex } from '../../../electron/runs/run-index.js';
import { ResumeOptions as Options } from '../state/resume-options.svelte.js';
import { Studio } from '../state/studio.svelte.js';
import { TrainPage } from '../state/train-page.svelte.js';
import { byId, choose, optionsOf, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

const H200: DeviceInfo = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 150_000_000_000, freeBytes: 140_000_000_000, error: '' };
const noGpuHere = loadAddon().devices().every((d) => whyUnusable(d) !== null);
/** the GPUs the choices are built for (empty: the service's own answer, this machine's) */
let gpus: DeviceInfo[] = [];

// the page: the Runs page, where the Resume options show (some tests mount the options panel alone instead)
const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-resume-options-',
  allowedRoots: null,
  gpus: () => gpus,
  load: () => import('../pages/Runs.svelte'),
});
let api: ApiTransport;
let OptionsPanel: Component<{ options: Options; idPrefix: string }>;
/** a run cancelled after its first steps, with a checkpoint (each test resumes a copy) */
let cancelledRun: string;

const events: ApiEvent[] = [];

// after the harness's own beforeAll: the bridge is set, so the app's api module loads with it
beforeAll(async () => {
  const service = harness.service;
  service.onEvent((e) => events.push(e));
  api = (await import('../api/index.js')).api;
  OptionsPanel = (await import('./ResumeOptions.svelte')).default as unknown as Component<{ options: Options; idPrefix: string }>;

  cancelledRun = join(harness.home, 'cancelled');
  // the cancel goes out on the first step's event and must land before the run's last step: a demo step takes
  // ~5 ms, so a 10-step run left ~40 ms for it (a test process held up that long let the run finish, and every
  // test here failed); 40 steps leave ~190 ms, and the resumes below train the rest in a fraction of a second
  const started = await api.call('startRun', {
    model: harness.demo.model, data: harness.demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'lora', out: cancelledRun,
    hyper: { steps: 40, threads: 2, batchSize: 2 },
  });
  const off = service.onEvent((e) => {
    if (e.type === 'run' && e.runId === started.runId && e.event.type === 'step') {
      off();
      void service.call('cancelRun', { runId: started.runId });
    }
  });
  await until('the cancel', () => events.some((e) => e.type === 'run' && e.runId === started.runId && e.event.type === 'cancelled'));
  // the worker lets go of the run folder just after its last event: copies must not race its lock file away
  await until('the run folder released', () => !existsSync(join(cancelledRun, 'run.lock')));
}, 120_000);
afterEach(() => {
  gpus = [];
});

const readRecord = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));

/** A copy of the cancelled run, its run.json recording `device` / `precision`, listed in the studio's index. */
async function copyOfRun(name: string, patch: { device?: string; precision?: string; model?: string } = {}): Promise<string> {
  const dir = join(harness.home, name);
  cpSync(cancelledRun, dir, { recursive: true });
  const record = readRecord(dir);
  Object.assign(record.config, patch, { out: dir });
  writeFileSync(join(dir, 'run.json'), JSON.stringify(record, null, 2));
  await recordInIndex(dir, record);
  return dir;
}



/** The Runs page with `dir` selected, once its Resume options are ready (or failed to load). */
async function runsPage(dir: string): Promise<{ root: HTMLElement; studio: Studio }> {
  const studio = new Studio();
  studio.runDir = dir;
  studio.page = 'runs';
  const root = harness.mount({ studio });
  await until('the Resume options', () => byId(root, 'resume-device') !== null || byId(root, 'resume-options-error') !== null);
  return { root, studio };
}

/** The options panel alone, for `dir`'s record. */
async function panel(dir: string): Promise<{ root: HTMLElement; options: Options }> {
  const options = new Options(api, dir);
  await options.load();
  const root = harness.mountComponent(OptionsPanel, { options, idPrefix: 'test' });
  flushSync();
  return { root, options };
}

describe.skipIf(!noGpuHere)('the Runs page on this machine (no GPU)', () => {
  it('a run trained here: cpu and "fp32 (CPU)", as recorded; nothing to change is sent', async () => {
    const dir = await copyOfRun('as-recorded');
    expect(readRecord(dir).config).toMatchObject({ device: 'cpu', precision: 'fp32' });
    const { root } = await runsPage(dir);
    expect(byId(root, 'resume-recorded')!.textContent!.replace(/\s+/g, ' ').trim()).toBe('Recorded in run.json: device cpu, precision fp32.');
    expect(optionsOf(root, 'resume-device')).toEqual(['auto', 'cpu']);
    expect((byId(root, 'resume-device') as HTMLSelectElement).value).toBe('cpu');
    expect(byId(root, 'resume-precision')).toBeNull();
    expect(byId(root, 'resume-precision-cpu-note')!.textContent).toBe('fp32 (CPU)');
    expect(byId(root, 'resume-note')).toBeNull();
    // the form's help beside each (the service's specs)
    expect(byId(root, 'resume-options')!.textContent).toContain('Where to train: auto picks the first NVIDIA GPU when there is one');
    expect(byId(root, 'resume-options')!.textContent).toContain('bf16: tensor cores, about half the memory traffic, activations kept in 16 bits; fp32: exact');
  }, 60_000);

  it('gradient checkpointing and "resume even if it does not fit" (memory, disk): offered while off, sent only when ticked', async () => {
    const dir = await copyOfRun('memory-options');
    const { root, options } = await panel(dir);
    expect(options.request).toEqual({});
    for (const id of ['resume-checkpointing', 'resume-ignore-memory', 'resume-ignore-disk']) {
      const box = byId(root, id) as HTMLInputElement;
      expect(box.checked).toBe(false);
      box.click();
      flushSync();
    }
    expect(options.request).toEqual({ gradientCheckpointing: true, ignoreMemoryCheck: true, ignoreDiskCheck: true });
    // a run that already has them on: nothing to offer
    const on = await copyOfRun('memory-options-on');
    const record = readRecord(on);
    record.config.gradientCheckpointing = true;
    record.config.ignoreMemoryCheck = true;
    writeFileSync(join(on, 'run.json'), JSON.stringify(record));
    harness.unmount();
    const second = await panel(on);
    expect(byId(second.root, 'resume-checkpointing')).toBeNull();
    expect(byId(second.root, 'resume-ignore-memory')).toBeNull();
    // the disk is checked again at each resume (what it holds has changed): always offered, off
    expect((byId(second.root, 'resume-ignore-disk') as HTMLInputElement).checked).toBe(false);
    expect(second.options.request).toEqual({});
  }, 60_000);

  it('a GPU run (cuda:0, bf16): the CPU preselected and why in one line; Resume continues it there in fp32', async () => {
    const dir = await copyOfRun('gpu-run', { device: 'cuda:0', precision: 'bf16' });
    const { root, studio } = await runsPage(dir);
    expect(byId(root, 'resume-recorded')!.textContent!.replace(/\s+/g, ' ').trim()).toBe('Recorded in run.json: device cuda:0, precision bf16.');
    expect(byId(root, 'resume-note')!.textContent).toBe('This run trained on cuda:0 in bf16, but this machine has no NVIDIA GPU the engine can use: it continues on the CPU, in fp32.');
    expect((byId(root, 'resume-device') as HTMLSelectElement).value).toBe('cpu');
    expect(byId(root, 'resume-precision-cpu-note')!.textContent).toBe('fp32 (CPU)');

    byId(root, 'run-resume')!.click();
    await until('the Train page', () => studio.page === 'train');
    expect(studio.error).toBeNull();
    const runId = studio.runId!;
    await until('the resumed run to finish', () => events.some((e) => e.type === 'run' && e.runId === runId && (e.event.type === 'finished' || e.event.type === 'failed')));
    const record = readRecord(dir);
    expect(record.status).toBe('finished');
    expect(record.config).toMatchObject({ device: 'cpu', precision: 'fp32' });
    expect(record.resolved).toMatchObject({ device: 'CPU: device cpu was asked for', precision: 'fp32: asked for (exact)' });
    expect(record.resumes).toHaveLength(1);
  }, 90_000);

  it('a GPU this machine does not have, kept by choice: the service\'s refusal shows on the options, not in the banner', async () => {
    gpus = [H200]; // the choices a GPU machine offers; the service behind them has none
    const dir = await copyOfRun('refused', { device: 'cuda:0', precision: 'bf16' });
    const { root, studio } = await runsPage(dir);
    expect((byId(root, 'resume-device') as HTMLSelectElement).value).toBe('cuda:0');
    expect((byId(root, 'resume-precision') as HTMLSelectElement).value).toBe('bf16');
    byId(root, 'run-resume')!.click();
    await until('the refusal', () => byId(root, 'resume-refusal') !== null);
    const refusal = byId(root, 'resume-refusal')!.textContent!;
    expect(refusal).toMatch(/^device cuda:0: no NVIDIA GPU can be used: /);
    expect(refusal).toContain('choose cpu as the device in the Resume options');
    expect(refusal).not.toMatch(/--device|--precision/);
    expect(studio.error).toBeNull();
    expect(studio.page).toBe('runs');
    expect(readRecord(dir).status).toBe('cancelled');
    // choosing the CPU clears it
    choose(root, 'resume-device', 'cpu');
    expect(byId(root, 'resume-refusal')).toBeNull();
    expect(byId(root, 'resume-precision-cpu-note')!.textContent).toBe('fp32 (CPU)');
  }, 60_000);
});

describe('the options on a GPU machine (an NVIDIA H200, as the service builds its choices)', () => {
  it('the recorded GPU is kept with its precision; the CPU shows fp32 (CPU) and sends it; back to the GPU, as recorded again', async () => {
    gpus = [H200];
    const dir = await copyOfRun('h200', { device: 'cuda:0', precision: 'bf16' });
    const { root, options } = await panel(dir);
    expect(optionsOf(root, 'resume-device')).toEqual(['auto', 'cpu', 'cuda:0']);
    expect((byId(root, 'resume-device') as HTMLSelectElement).value).toBe('cuda:0');
    expect(optionsOf(root, 'resume-precision')).toEqual(['auto', 'fp32', 'bf16']);
    expect((byId(root, 'resume-precision') as HTMLSelectElement).value).toBe('bf16');
    expect(byId(root, 'resume-note')).toBeNull();
    expect(options.request).toEqual({});

    choose(root, 'resume-device', 'cpu');
    expect(byId(root, 'resume-precision')).toBeNull();
    expect(byId(root, 'resume-precision-cpu-note')!.textContent).toBe('fp32 (CPU)');
    expect(options.request).toEqual({ device: 'cpu', precision: 'fp32' });

    choose(root, 'resume-device', 'cuda:0');
    expect((byId(root, 'resume-precision') as HTMLSelectElement).value).toBe('bf16');
    expect(options.request).toEqual({});
    choose(root, 'resume-precision', 'fp32');
    expect(options.request).toEqual({ precision: 'fp32' });
    choose(root, 'resume-device', 'auto');
    expect(options.request).toEqual({ device: 'auto', precision: 'fp32' });
  }, 60_000);

  it('a GPU it does not list (cuda:1): auto preselected, bf16 where that GPU has it (auto), and why', async () => {
    gpus = [H200];
    const dir = await copyOfRun('h200-cuda1', { device: 'cuda:1', precision: 'bf16' });
    const { root, options } = await panel(dir);
    expect((byId(root, 'resume-device') as HTMLSelectElement).value).toBe('auto');
    expect((byId(root, 'resume-precision') as HTMLSelectElement).value).toBe('auto');
    expect(byId(root, 'resume-note')!.textContent).toBe('This run trained on cuda:1, which this machine does not list (it has cuda:0): it continues on auto, the first usable GPU, in bf16 where that GPU has it, else fp32.');
    expect(options.request).toEqual({ device: 'auto', precision: 'auto' });
  }, 60_000);

  it('a model folder that is gone: the options say so, and Resume sends the record as it is', async () => {
    const dir = await copyOfRun('no-model', { model: join(harness.home, 'no-such-model') });
    const { root, options } = await panel(dir);
    expect(byId(root, 'resume-options-error')!.textContent).toContain('no-such-model');
    expect(byId(root, 'resume-device')).toBeNull();
    expect(options.request).toEqual({});
  }, 60_000);

  it('a device or precision refusal is the options\' own; any other error is not', () => {
    const options = new Options(api, '/x');
    expect(options.takeError(new ApiError({ code: 'invalid', field: 'precision', message: 'precision bf16: …' }))).toBe(true);
    expect(options.refusal).toEqual({ field: 'precision', message: 'precision bf16: …' });
    expect(options.takeError(new ApiError({ code: 'invalid', field: 'runDir', message: 'runDir is required' }))).toBe(false);
    expect(options.takeError(new ApiError({ code: 'failed', message: 'already training' }))).toBe(false);
    expect(options.takeError(new Error('x'))).toBe(false);
    // the next Resume press clears it: a failure for another reason must not show the old refusal beside it
    expect(options.refusal).not.toBeNull();
    options.attempt();
    expect(options.refusal).toBeNull();
  });
});

describe('the Train page\'s Resume', () => {
  it('reads the options from the run\'s record once it can be resumed, and resumes where they say', async () => {
    const dir = await copyOfRun('train-page', { device: 'cuda:0', precision: 'bf16' });
    const studio = new Studio();
    const page = new TrainPage(studio, api, (flush) => void setTimeout(flush, 0));
    const off = page.subscribe();
    try {
      studio.runDir = dir;
      await page.follow(null, dir);
      expect(page.monitor.canResumeRun).toBe(true);
      await page.prepareResume();
      const options = page.resumeOptions!;
      expect(options.recorded).toEqual({ model: harness.demo.model, method: 'lora', device: 'cuda:0', precision: 'bf16', gradientCheckpointing: false, ignoreMemoryCheck: false });
      if (!noGpuHere) return; // the rest is this machine's: no GPU
      expect(options.request).toEqual({ device: 'cpu', precision: 'fp32' });
      await page.resume();
      expect(studio.error).toBeNull();
      expect(page.resumeOptions).toBeNull();
      const runId = studio.runId!;
      await until('the resumed run to finish', () => events.some((e) => e.type === 'run' && e.runId === runId && e.event.type === 'finished'));
      expect(readRecord(dir).config).toMatchObject({ device: 'cpu', precision: 'fp32' });
    } finally {
      off();
    }
  }, 90_000);
});
