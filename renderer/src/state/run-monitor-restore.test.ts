// @vitest-environment node
// A Train page opened again (after another page, or a reload) shows the run
// as the live page showed it: a real run on the demo model through the real
// service, its events taken by one TrainPage as they came, then a new
// TrainPage built from the run's history alone; Elapsed, Memory (measured,
// estimated, available) and both speeds must be the same, for a paused run
// and for a finished one; the log line of the time estimate, and after a
// reload what the check said before the start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ApiTransport, DemoPaths } from '../../../electron/api/contract.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { createIpcTransport } from '../api/ipc.js';
import { until } from '../testing/dom-waits.js';
import { serviceBridge } from '../testing/service-bridge.js';
import type { RunMonitor } from './run-monitor.svelte.js';
import { Studio } from './studio.svelte.js';
import { TrainPage } from './train-page.svelte.js';
import { readSnapshot, restoreSnapshot, saveSnapshot, snapshotOf } from './wizard-session.svelte.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-monitor-restore-'));
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let api: ApiTransport;
let demo: DemoPaths;

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  api = createIpcTransport(serviceBridge(service, () => []));
  demo = await api.call('demoPaths', {});
});
afterAll(async () => {
  await service.close();
  rmSync(home, { recursive: true, force: true });
});

/** What the Train page shows of a run beside its charts. */
const shown = (m: RunMonitor) => ({
  status: m.status, step: m.step, totalSteps: m.totalSteps,
  elapsedSeconds: m.elapsedSeconds, memory: m.memory, memoryEstimateBytes: m.memoryEstimateBytes, availableMemoryBytes: m.availableMemoryBytes,
  tokensPerSecond: m.tokensPerSecond, inputTokensPerSecond: m.inputTokensPerSecond,
});

async function startAndFollow(hyper: Record<string, unknown>): Promise<{ studio: Studio; page: TrainPage; off: () => void }> {
  const studio = new Studio();
  const page = new TrainPage(studio, api, (flush) => void setTimeout(flush, 0));
  const off = page.subscribe();
  const settings = { model: demo.model, data: demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'lora' as const, hyper: { threads: 1, batchSize: 2, device: 'cpu', ...hyper } };
  // what the Hyperparameters page keeps of its check when it starts the run
  const check = await api.call('checkRun', settings);
  const started = await api.call('startRun', settings);
  studio.startEstimate = { runDir: started.runDir, text: check.time!.text };
  studio.runId = started.runId;
  studio.runDir = started.runDir;
  await page.follow(started.runId, started.runDir);
  return { studio, page, off };
}

/** A Train page opened anew on the same run (the page left and opened again; after a reload the id is asked again). */
async function reopened(studio: Studio, runId: string | null): Promise<RunMonitor> {
  const again = new TrainPage(studio, api, () => {});
  await again.follow(runId, studio.runDir!);
  return again.monitor;
}

describe('the Train page opened again', () => {
  it('a finished run: the same elapsed time, memory and speeds as the live page', async () => {
    const { studio, page, off } = await startAndFollow({ steps: 6 });
    await until('the end', () => page.monitor.status === 'finished', 120_000);
    off();
    const live = shown(page.monitor);
    expect(live.elapsedSeconds).toBeGreaterThan(0);
    expect(live.memory!.peakRssBytes).toBeGreaterThan(0);
    expect(live.inputTokensPerSecond).toBeGreaterThan(live.tokensPerSecond!);
    const restored = await reopened(studio, null);
    expect(shown(restored)).toEqual(live);
    // the log line of the time estimate, said live before the first step, is in the restored log too
    const timeLine = page.monitor.log.find((l) => l.message.startsWith('this run: '));
    expect(timeLine).toBeDefined();
    expect(restored.log).toContainEqual(timeLine);
  }, 180_000);

  it('a paused run: the same figures after leaving and after a reload', async () => {
    const { studio, page, off } = await startAndFollow({ steps: 4000 });
    await until('a few steps', () => page.monitor.step >= 3, 120_000);
    await page.pause();
    await until('paused', () => page.monitor.status === 'paused', 120_000);
    // every event of the run so far taken
    await new Promise((r) => setTimeout(r, 50));
    page.flush();
    const live = shown(page.monitor);
    expect(live.memory).not.toBeNull();
    expect(shown(await reopened(studio, studio.runId))).toEqual(live);
    expect(shown(await reopened(studio, null))).toEqual(live);
    // a reload: the tab's snapshot brings back what the check said before the start
    const said = new TrainPage(studio, api, () => {}).estimateBeforeStart;
    expect(said).toMatch(/ on this CPU /);
    const storage = new Map<string, string>();
    saveSnapshot({ setItem: (k, v) => storage.set(k, v) }, snapshotOf(studio));
    const reloaded = new Studio();
    await restoreSnapshot(reloaded, api, readSnapshot({ getItem: (k) => storage.get(k) ?? null })!);
    expect(reloaded.runDir).toBe(studio.runDir);
    expect(new TrainPage(reloaded, api, () => {}).estimateBeforeStart).toBe(said);
    await page.cancel();
    await until('cancelled', () => page.monitor.status === 'cancelled', 120_000);
    off();
  }, 240_000);
});
