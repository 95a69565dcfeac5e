// The Runs step rendered in jsdom against the real studio service (behind
// the preload bridge) on the bundled demo model: while a run trains, its row
// follows the run's live events (steps, then its ending) without Refresh,
// in the Train page's words ("training", not "running").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mount, unmount, type Component } from 'svelte';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ApiEvent, DemoPaths, StartedRun } from '../../../electron/api/contract.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { STATUS_WORDS } from '../state/run-monitor.svelte.js';
import { Studio } from '../state/studio.svelte.js';
import { demoPathsOf, serviceBridge } from '../testing/service-bridge.js';
import { until } from '../testing/dom-waits.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-runs-page-'));
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
let Runs: Component<{ studio: Studio }>;

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  window.peftStudio = serviceBridge(service, () => []);
  Runs = (await import('./Runs.svelte')).default as unknown as Component<{ studio: Studio }>;
  demo = await demoPathsOf(service);
});
afterAll(async () => {
  await service.close();
  rmSync(home, { recursive: true, force: true });
});


describe('the Runs table while a run trains', () => {
  it('updates the row from live events, and words its status as the Train page does', async () => {
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    let stepped = 0;
    const off = service.onEvent((e: ApiEvent) => void (e.type === 'run' && e.event.type === 'step' && (stepped = e.event.step)));
    const r = await service.call('startRun', { model: demo.model, data, method: 'lora', hyper: { steps: 100_000, threads: 1, saveEvery: 5 } });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const run = r.value as StartedRun;
    await until('a first step', () => stepped > 0);

    const root = document.createElement('div');
    document.body.append(root);
    const component = mount(Runs, { target: root, props: { studio: new Studio() } });
    const row = () => root.querySelector<HTMLElement>(`[data-testid="run-row"][data-dir="${run.runDir}"]`);
    const steps = () => Number(row()!.querySelector('[data-testid="run-row-steps"]')!.textContent!.split(' / ')[0]);
    await until('the row', () => row() !== null);
    expect(row()!.querySelector('[data-testid="run-row-status"]')!.textContent).toBe(STATUS_WORDS.running);
    expect(STATUS_WORDS.running).toBe('training');
    expect(row()!.textContent).toContain('LoRA');
    const first = steps();
    // no Refresh pressed: the live events move the row on
    await until('the row to move on', () => steps() > first + 20);
    expect(row()!.querySelector('[data-testid="run-row-steps"]')!.textContent).toMatch(/ \/ 100000$/);

    const c = await service.call('cancelRun', { runId: run.runId });
    if (!c.ok) throw new Error(JSON.stringify(c.error));
    await until('the row says cancelled', () => row()!.dataset.status === 'cancelled');
    expect(row()!.querySelector('[data-testid="run-row-status"]')!.textContent).toBe('cancelled');
    expect(row()!.textContent).toContain('resumable');
    off();
    unmount(component);
  });
});
