// Comparing runs on the Runs page, rendered in jsdom against the real studio
// service on the bundled demo model: two finished runs at two learning rates
// picked in the table share the eval-loss and training-loss charts (one
// legend entry each, named by the run), the table shows the learning rate as
// the one setting that differs and marks the lower best eval loss (computed
// here from the service's own histories); the picks outlive a Refresh
// without reading the histories again; a run without evaluations says so in
// the legend; a run whose record is damaged shows its error, then drops out
// at the next Refresh. A live run is followed from its events alone.
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Chart } from 'chart.js';
import { describe, expect, it } from 'vitest';

import type { ApiEvent, PreloadBridge, RunHistory, StartedRun } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { finishedDemoRun } from '../testing/demo-runs.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

/** the runs whose history the page asked for, in order */
const reads: string[] = [];
/** a run whose history is held back until the test lets it through */
const held = new Map<string, Promise<void>>();

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-runs-compare-',
  allowedRoots: null,
  bridge: (bridge) => ({
    ...bridge,
    call: (async (method, request) => {
      if (method === 'runHistory') {
        const dir = (request as { runDir: string }).runDir;
        reads.push(dir);
        await held.get(dir);
      }
      return bridge.call(method, request);
    }) as PreloadBridge['call'],
  }),
  load: () => import('./Runs.svelte'),
});

async function history(dir: string): Promise<RunHistory> {
  const r = await harness.service.call('runHistory', { runDir: dir });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value as RunHistory;
}

const row = (root: HTMLElement, dir: string) => root.querySelector<HTMLElement>(`[data-testid="run-row"][data-dir="${dir}"]`);
const pick = (root: HTMLElement, dir: string) => row(root, dir)!.querySelector<HTMLInputElement>('[data-testid="run-compare-pick"]')!;
const columns = (root: HTMLElement) => [...root.querySelectorAll<HTMLElement>('[data-testid="run-compare-column"]')].map((c) => c.dataset.dir);
const chartOf = (root: HTMLElement, id: string) => Chart.getChart(byId(root, id)!.querySelector('canvas')!)!;
const cells = (root: HTMLElement, kind: 'setting' | 'result', label: string) =>
  [...root.querySelectorAll<HTMLElement>(`[data-testid="run-compare-${kind}"][data-label="${label}"] td`)];
const readsOf = (dir: string) => reads.filter((d) => d === dir).length;

// Each test trains its runs first: 2-4 s here, past vitest's default timeout of 5 s on a busy two-core machine.
describe('comparing runs on the Runs page', () => {
  it('two learning rates: both on the charts, the rate as the setting that differs, the lower best eval loss marked; picks outlive a Refresh', async () => {
    const evaluated = { steps: 4, evalSplit: 0.2, evalEvery: 2, seqLen: 128 };
    const fast = await finishedDemoRun(harness.service, harness.demo, { ...evaluated, lr: 0.002 });
    const slow = await finishedDemoRun(harness.service, harness.demo, { ...evaluated, lr: 0.0005 });
    const plain = await finishedDemoRun(harness.service, harness.demo, { steps: 2, seqLen: 128 });
    const damaged = await finishedDemoRun(harness.service, harness.demo, { steps: 1, seqLen: 128 });

    const root = harness.mount({ studio: new Studio() });
    await until('the rows', () => [fast, slow, plain, damaged].every((d) => row(root, d) !== null));
    expect(pick(root, fast).getAttribute('aria-label')).toBe(`Compare ${basename(fast)}`);

    pick(root, fast).click();
    await until('the hint to pick another', () => byId(root, 'run-compare-hint') !== null);
    expect(byId(root, 'run-compare')).toBeNull();
    pick(root, slow).click();
    await until('both runs compared', () => columns(root).length === 2);
    expect(columns(root)).toEqual([fast, slow]);

    // the expected figures, from the service's own records of the two runs
    const [hFast, hSlow] = [await history(fast), await history(slow)];
    expect(hFast.evals.length).toBeGreaterThan(0);
    expect(hSlow.evals.length).toBeGreaterThan(0);
    const best = (h: RunHistory) => h.evals.reduce((a, b) => (b.evalLoss < a.evalLoss ? b : a));
    const [bFast, bSlow] = [best(hFast), best(hSlow)];
    expect(bFast.evalLoss).not.toBe(bSlow.evalLoss);

    const evalChart = chartOf(root, 'run-compare-eval-chart');
    expect(evalChart.data.datasets.map((d) => d.label)).toEqual([basename(fast), basename(slow)]);
    expect(evalChart.data.datasets.map((d) => d.data)).toEqual([hFast, hSlow].map((h) => h.evals.map((e) => ({ x: e.step, y: e.evalLoss }))));
    expect(evalChart.options.plugins?.legend?.display).toBe(true);
    const lossChart = chartOf(root, 'run-compare-loss-chart');
    expect(lossChart.data.datasets.map((d) => d.label)).toEqual([basename(fast), basename(slow)]);
    expect(lossChart.data.datasets.map((d) => d.data.length)).toEqual([4, 4]);
    expect(lossChart.data.datasets[0].borderColor).not.toBe(lossChart.data.datasets[1].borderColor);

    // the only setting that differs: the learning rate; the rest folded into "Same in all"
    expect([...root.querySelectorAll<HTMLElement>('[data-testid="run-compare-setting"]')].map((r) => r.dataset.label)).toEqual(['Learning rate']);
    expect(cells(root, 'setting', 'Learning rate').map((c) => c.textContent)).toEqual(['0.002', '0.0005']);
    expect(byId(root, 'run-compare-same')!.querySelector('summary')!.textContent).toMatch(/^Same in all: Method, Model, Data, Evaluation, /);
    expect(byId(root, 'run-compare-caveat')).toBeNull();

    const bests = cells(root, 'result', 'Best eval loss');
    const lower = bFast.evalLoss < bSlow.evalLoss ? 0 : 1;
    expect(bests.map((c) => c.dataset.lowest)).toEqual([lower === 0 ? 'true' : 'false', lower === 1 ? 'true' : 'false']);
    const words = (b: { step: number; evalLoss: number }) => `${b.evalLoss.toFixed(4)} at step ${b.step}`;
    expect(bests[lower].textContent!.trim()).toBe(`${words([bFast, bSlow][lower])} lowest`);
    expect(bests[1 - lower].textContent!.trim()).toBe(words([bFast, bSlow][1 - lower]));
    expect(cells(root, 'result', 'Last training loss').map((c) => c.textContent)).toEqual(
      [hFast, hSlow].map((h) => `${h.steps[h.steps.length - 1].loss.toFixed(4)} at step 4`),
    );
    expect(cells(root, 'result', 'Steps').map((c) => c.textContent)).toEqual(['4 / 4', '4 / 4']);
    expect(cells(root, 'result', 'Status').map((c) => c.textContent)).toEqual(['finished', 'finished']);
    expect([readsOf(fast), readsOf(slow)]).toEqual([1, 1]);

    // Refresh: the picks stay, nothing is read again
    byId(root, 'runs-refresh')!.click();
    await until('the refresh to end', () => !(byId(root, 'runs-refresh') as HTMLButtonElement).disabled);
    expect(pick(root, fast).checked && pick(root, slow).checked).toBe(true);
    expect(columns(root)).toEqual([fast, slow]);
    expect([readsOf(fast), readsOf(slow)]).toEqual([1, 1]);

    // a run without evaluations: in the legend, with why
    pick(root, plain).click();
    await until('the third run', () => columns(root).length === 3);
    expect(evalChart.data.datasets.map((d) => d.label)).toEqual([basename(fast), basename(slow), `${basename(plain)} (no evaluation set up)`]);
    expect(byId(root, 'run-compare-no-evals')!.textContent!.replace(/\s+/g, ' ').trim()).toBe(`Not on this chart: ${basename(plain)} (no evaluation set up).`);
    expect(cells(root, 'result', 'Best eval loss')[2].textContent).toBe('no evaluation set up');
    expect(cells(root, 'setting', 'Evaluation').map((c) => c.textContent)).toEqual(['20% held out, every 2 steps', '20% held out, every 2 steps', 'none']);
    // its steps and data differ from the other two's: their eval losses are said not to compare
    expect(cells(root, 'setting', 'Length').map((c) => c.textContent)).toEqual(['4 steps', '4 steps', '2 steps']);
    expect(byId(root, 'run-compare-caveat')!.textContent).toContain('evaluation rows');

    // a record damaged after the table was read: its read fails and says why; the next Refresh drops it with a note
    writeFileSync(join(damaged, 'run.json'), '{ torn');
    pick(root, damaged).click();
    await until('the read error', () => root.querySelector(`[data-testid="run-compare-read-error"][data-dir="${damaged}"]`) !== null);
    expect(root.querySelector(`[data-testid="run-compare-read-error"][data-dir="${damaged}"]`)!.textContent).toContain('is not valid JSON');
    expect(columns(root)).toEqual([fast, slow, plain]);
    byId(root, 'runs-refresh')!.click();
    await until('the damaged run to drop out', () => byId(root, 'run-compare-note') !== null);
    expect(byId(root, 'run-compare-note')!.textContent).toBe(`${basename(damaged)} left the comparison: its folder is gone or damaged.`);
    expect(pick(root, damaged).checked).toBe(false);
    expect(pick(root, damaged).disabled).toBe(true);
    expect(root.querySelector('[data-testid="run-compare-read-error"]')).toBeNull();
    expect(columns(root)).toEqual([fast, slow, plain]);
  }, 120_000);

  it('a picked run still reading says so; a live one is followed from its events, its history read once', async () => {
    const past = await finishedDemoRun(harness.service, harness.demo, { steps: 2, seqLen: 128 });
    const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
    let stepped = 0;
    const off = harness.service.onEvent((e: ApiEvent) => void (e.type === 'run' && e.event.type === 'step' && (stepped = e.event.step)));
    const r = await harness.service.call('startRun', { model: harness.demo.model, data, method: 'lora', hyper: { steps: 100_000, threads: 1, seqLen: 128 } });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const live = (r.value as StartedRun).runDir;
    try {
      await until('a first step', () => stepped > 0);
      let release = () => {};
      held.set(live, new Promise<void>((resolve) => (release = resolve)));

      const root = harness.mount({ studio: new Studio() });
      await until('the rows', () => row(root, live) !== null && row(root, past) !== null);
      pick(root, past).click();
      pick(root, live).click();
      await until('the past run compared', () => columns(root).length === 1);
      expect(root.querySelector(`[data-testid="run-compare-reading"][data-dir="${live}"]`)!.textContent).toBe(`${basename(live)}: reading its history…`);

      release();
      await until('both runs compared', () => columns(root).length === 2);
      expect(root.querySelector('[data-testid="run-compare-reading"]')).toBeNull();
      const lossChart = chartOf(root, 'run-compare-loss-chart');
      const liveSteps = () => lossChart.data.datasets[1].data.length;
      const first = liveSteps();
      // no Refresh: the live run's events move its line on
      await until('the live run\'s line to grow', () => liveSteps() > first + 10);
      expect(cells(root, 'result', 'Status').map((c) => c.textContent)).toEqual(['finished', 'training']);
      expect(readsOf(live)).toBe(1);
    } finally {
      held.clear();
      const c = await harness.service.call('cancelRun', { runId: (r.value as StartedRun).runId });
      if (!c.ok) throw new Error(JSON.stringify(c.error));
      off();
    }
  }, 120_000);
});
