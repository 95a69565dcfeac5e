// The Runs step rendered in jsdom against the real studio service (behind
// the preload bridge) on the bundled demo model: while a run trains, its row
// follows the run's live events (steps, then its ending) without Refresh,
// in the Train page's words ("training", not "running"); a past run's view
// shows its settings that look like a slip in the app's words, as the Train
// page does (from its record), and nothing for a run without any.
import { describe, expect, it } from 'vitest';

import type { ApiEvent, StartedRun } from '../../../electron/api/contract.js';
import { STATUS_WORDS } from '../state/run-monitor.svelte.js';
import { Studio } from '../state/studio.svelte.js';
import { finishedDemoRun } from '../testing/demo-runs.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-runs-page-',
  allowedRoots: null,
  load: () => import('./Runs.svelte'),
});

describe('the Runs table while a run trains', () => {
  it('updates the row from live events, and words its status as the Train page does', async () => {
    const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
    let stepped = 0;
    const off = harness.service.onEvent((e: ApiEvent) => void (e.type === 'run' && e.event.type === 'step' && (stepped = e.event.step)));
    const r = await harness.service.call('startRun', { model: harness.demo.model, data, method: 'lora', hyper: { steps: 100_000, threads: 1, saveEvery: 5 } });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const run = r.value as StartedRun;
    await until('a first step', () => stepped > 0);

    const root = harness.mount({ studio: new Studio() });
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

    const c = await harness.service.call('cancelRun', { runId: run.runId });
    if (!c.ok) throw new Error(JSON.stringify(c.error));
    await until('the row says cancelled', () => row()!.dataset.status === 'cancelled');
    expect(row()!.querySelector('[data-testid="run-row-status"]')!.textContent).toBe('cancelled');
    expect(row()!.textContent).toContain('resumable');
    off();
  }, 120_000);
});

/** runs the demo to its end and resolves with the run's folder */
const finishedRun = (hyper: Record<string, unknown>) => finishedDemoRun(harness.service, harness.demo, hyper);

describe("the Runs page's view of a past run", () => {
  // written out here, as the app words it for --steps 3 --warmup-steps 3 at the default learning rate (not derived from the code that words it)
  const APP = "Warmup steps 3 is not below the run's 3 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use fewer warmup steps, or more Steps";

  it('shows the settings that look like a slip in the app\'s words above the charts; a run without any shows none', async () => {
    const slipped = await finishedRun({ steps: 3, warmupSteps: 3 });
    const plain = await finishedRun({ steps: 2 });

    const root = harness.mount({ studio: new Studio() });
    const view = async (dir: string) => {
      const row = () => root.querySelector<HTMLElement>(`[data-testid="run-row"][data-dir="${dir}"]`);
      await until(`the row of ${dir}`, () => row() !== null);
      row()!.querySelector<HTMLButtonElement>('[data-testid="run-select"]')!.click();
      // its history read: the settings are shown
      await until(`the view of ${dir}`, () => byId(root, 'run-detail')?.querySelector('.mono')?.getAttribute('title') === dir && byId(root, 'run-settings') !== null);
    };

    await view(slipped);
    const notice = byId(root, 'run-warnings');
    expect(notice).not.toBeNull();
    expect(byId(root, 'run-detail')!.contains(notice)).toBe(true);
    // a region named by its heading (an id unique on the page, a level under the run's own title), not a live one
    const heading = notice!.querySelector('h4')!;
    expect(notice!.getAttribute('aria-labelledby')).toBe(heading.id);
    expect(document.querySelectorAll(`[id="${heading.id}"]`)).toHaveLength(1);
    expect(heading.textContent!.trim()).toBe('A setting of this run looks like a slip');
    expect([...notice!.querySelectorAll('li')].map((li) => li.textContent!.trim())).toEqual([`${APP}.`]);
    expect(notice!.textContent).not.toContain('--warmup-steps'); // the app's words, not the command line's
    expect(notice!.hasAttribute('aria-live') || notice!.hasAttribute('role')).toBe(false);
    expect(notice!.compareDocumentPosition(byId(root, 'run-loss-chart')!) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();

    await view(plain);
    expect(byId(root, 'run-warnings')).toBeNull();
    // and back: the notice follows the selected run
    await view(slipped);
    expect(byId(root, 'run-warnings')).not.toBeNull();
  }, 120_000);
});
