// The Train step rendered in jsdom against the real studio service (in this
// process, behind the preload bridge the desktop app has) on the bundled demo
// model: a finished run reads as finished (full bar, no time left, no live
// controls beside "Resume from the last checkpoint"), the live regions
// announce milestones rather than every step, the speed says what it counts,
// and with two runs training the page says which it follows and switches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mount, unmount, type Component } from 'svelte';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { ApiEvent, DemoPaths, StartedRun } from '../../../electron/api/contract.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { Studio } from '../state/studio.svelte.js';
import { demoPathsOf, serviceBridge } from '../testing/service-bridge.js';
import { byId, until } from '../testing/dom-waits.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-train-page-'));
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
let Train: Component<{ studio: Studio }>;
let component: ReturnType<typeof mount> | null = null;

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  window.peftStudio = serviceBridge(service, () => []);
  Train = (await import('./Train.svelte')).default as unknown as Component<{ studio: Studio }>;
  demo = await demoPathsOf(service);
});
afterEach(() => {
  if (component) void unmount(component);
  component = null;
  document.body.innerHTML = '';
});
afterAll(async () => {
  await service.close();
  rmSync(home, { recursive: true, force: true });
});


async function call<T>(method: string, request: unknown): Promise<T> {
  const r = await service.call(method as never, request as never);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value as T;
}

/** starts a run on the demo and resolves once it has taken `steps` steps (or ended) */
async function startRun(hyper: Record<string, unknown>, steps = 1): Promise<StartedRun> {
  const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
  let dir = '';
  let done = false;
  const off = service.onEvent((e: ApiEvent) => {
    if (e.type !== 'run' || e.runDir !== dir) return;
    if ((e.event.type === 'step' && e.event.step >= steps) || e.event.type === 'finished') done = true;
  });
  const started = await call<StartedRun>('startRun', { model: demo.model, data, method: 'lora', hyper: { threads: 1, ...hyper } });
  dir = started.runDir;
  await until(`${steps} steps of ${dir}`, () => done);
  off();
  return started;
}

function render(studio: Studio): HTMLElement {
  const root = document.createElement('div');
  document.body.append(root);
  component = mount(Train, { target: root, props: { studio } });
  return root;
}

describe('the Train page on a finished run', () => {
  it('shows it finished: full bar, no time left, no live controls; milestones only in the live regions', async () => {
    const run = await startRun({ steps: 4 }, 4);
    const studio = new Studio();
    studio.runDir = run.runDir;
    const root = render(studio);
    await until('the finished record', () => byId(root, 'run-status')?.dataset.status === 'finished');

    const bar = byId(root, 'progress') as HTMLProgressElement;
    expect(bar.hasAttribute('value')).toBe(true); // determinate
    expect(bar.value).toBe(bar.max);
    expect(byId(root, 'eta')!.textContent!.trim()).toBe('—');
    // the live controls are gone: "Resume" (continue a paused run) never sits beside a finished or resumable run
    expect(byId(root, 'run-controls')).toBeNull();
    expect(byId(root, 'resume')).toBeNull();
    expect(byId(root, 'run-status')!.textContent).toBe('finished');
    expect(byId(root, 'go-export')).not.toBeNull();

    // live regions: the step counter and the log are not; one status line is
    expect(byId(root, 'progress-text')!.hasAttribute('aria-live')).toBe(false);
    expect(byId(root, 'run-log')!.hasAttribute('aria-live')).toBe(false);
    expect(byId(root, 'run-announcement')!.getAttribute('role')).toBe('status');
    expect(byId(root, 'run-announcement')!.textContent).toBe('Run finished.');
    // the speed says what it counts
    expect(byId(root, 'tokens-per-second')!.textContent).toMatch(/^\s*\d+ trained tokens\/s\s*\(the tokens the loss counts;/);
    // the log holds what the record can say of the run
    expect(byId(root, 'run-log')!.textContent).toContain('Messages logged before this page opened are not kept');
    // the method in its display name
    expect(root.textContent).toContain('LoRA');
  });

  it('a cancelled run offers only "Resume from the last checkpoint", no disabled Resume beside it', async () => {
    const run = await startRun({ steps: 100_000, saveEvery: 1 }, 2);
    await call('cancelRun', { runId: run.runId });
    const studio = new Studio();
    studio.runDir = run.runDir;
    const root = render(studio);
    await until('the cancelled record', () => byId(root, 'run-status')?.dataset.status === 'cancelled' && byId(root, 'resume-run') !== null);
    expect(byId(root, 'resume')).toBeNull();
    expect(byId(root, 'pause')).toBeNull();
    expect(byId(root, 'eta')!.textContent!.trim()).toBe('—');
  });
});

describe('the Train page with two runs training', () => {
  it('says which run it follows, and switches to the other', async () => {
    const first = await startRun({ steps: 100_000 });
    const second = await startRun({ steps: 100_000 });
    try {
      const studio = new Studio();
      studio.runDir = second.runDir;
      studio.runId = second.runId;
      const root = render(studio);
      await until('the other run offered', () => byId(root, 'other-runs') !== null);
      const name = (dir: string) => dir.split('/').pop()!;
      expect(byId(root, 'other-runs')!.textContent).toContain(`Another run is training on this machine too; this page follows ${name(second.runDir)}.`);
      // the service's run list names the method (the live events alone do not)
      await until('the run list read', () => studio.liveRuns.every((r) => r.method === 'lora'));
      const choice = byId(root, 'follow-run-choice') as HTMLSelectElement;
      expect([...choice.options].map((o) => o.value)).toEqual([first.runDir]);
      expect(choice.options[0].textContent).toBe(`${name(first.runDir)} (LoRA)`);
      byId(root, 'follow-run')!.click();
      await until('the first run followed', () => byId(root, 'run-dir')?.getAttribute('title') === first.runDir);
      expect(studio.runId).toBe(first.runId);
      await until('its steps', () => /^step \d+ of 100000/.test(byId(root, 'progress-text')!.textContent!.trim()));
      // and the second is now the one offered
      await until('the second offered', () => (byId(root, 'follow-run-choice') as HTMLSelectElement | null)?.value === second.runDir);
      expect(studio.sharingWarning).toBe('2 other runs are training on this machine. A new run shares the processor and memory with them, so each runs slower.');
    } finally {
      await call('cancelRun', { runId: first.runId });
      await call('cancelRun', { runId: second.runId });
    }
  });
});
