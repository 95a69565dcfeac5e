// The Train step rendered in jsdom against the real studio service (in this
// process, behind the preload bridge the desktop app has) on the bundled demo
// model: a finished run reads as finished (full bar, no time left, no live
// controls beside "Resume from the last checkpoint"), the live regions
// announce milestones rather than every step, the speed says what it counts,
// with two runs training the page says which it follows and switches, and a
// run's settings that look like a slip show above the charts in the app's
// words (live, and again after a reload), its log keeping the CLI's line.
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { ApiEvent, ApiMethod, RunEvent, StartedRun } from '../../../electron/api/contract.js';
import { formatBytes } from '../format.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';
import { callOk } from '../../../electron/testing/service-calls.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-train-page-',
  allowedRoots: null,
  load: () => import('./Train.svelte'),
});

const call = <T>(method: ApiMethod, request: unknown) => callOk<T>(harness.service, method, request);

/** starts a run on the demo and resolves once it has taken `steps` steps (or ended) */
async function startRun(hyper: Record<string, unknown>, steps = 1): Promise<StartedRun> {
  const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
  let dir = '';
  let done = false;
  const off = harness.service.onEvent((e: ApiEvent) => {
    if (e.type !== 'run' || e.runDir !== dir) return;
    if ((e.event.type === 'step' && e.event.step >= steps) || e.event.type === 'finished') done = true;
  });
  const started = await call<StartedRun>('startRun', { model: harness.demo.model, data, method: 'lora', hyper: { threads: 1, ...hyper } });
  dir = started.runDir;
  await until(`${steps} steps of ${dir}`, () => done);
  off();
  return started;
}

function render(studio: Studio): HTMLElement {
  return harness.mount({ studio });
}

describe('the Train page on a finished run', () => {
  it('shows it finished: full bar, no time left, no live controls; milestones only in the live regions', async () => {
    const run = await startRun({ steps: 4 }, Infinity); // until its finished event: the page opens on the record alone
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
    // (prompt/completion rows: the model reads the prompt, the loss counts the completion)
    expect(byId(root, 'tokens-per-second')!.textContent).toMatch(/^\s*\d+ tokens\/s read, \d+ of them trained\s*\(trained: the tokens the loss counts\)/);
    // the log holds what the record can say of the run
    expect(byId(root, 'run-log')!.textContent).toContain('Messages logged before this page opened are not kept');
    // the method in its display name
    expect(root.textContent).toContain('LoRA');
  }, 120_000);

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
    // the run's length and time, whether its ending reached the page before its record or after (run-monitor-order.test.ts):
    // an ending heard live is shown at once, the length once the record is read (the history call may answer after it)
    await until('the run\'s length from its record', () => /of 100000/.test(byId(root, 'progress-text')!.textContent!));
    expect(byId(root, 'progress-text')!.textContent).toMatch(/^\s*step \d+ of 100000 \(0%\)\s*$/);
    expect(byId(root, 'run-message')!.textContent).toMatch(/^Cancelled after step \d+ of 100000; a checkpoint at step \d+ was saved — Resume continues from it\.$/);
    expect(byId(root, 'elapsed')!.textContent!.trim()).not.toBe('—');
  }, 120_000);
});

describe('the Train page on a failed run', () => {
  it('shows its bar at the last step that finished, its failure message, and the steps it logged', async () => {
    // lr 1e38 after 2 warmup steps: step 2's update overflows the LoRA weights and step 3's loss is NaN
    const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
    const started = await call<StartedRun>('startRun', {
      model: harness.demo.model, data, method: 'lora',
      hyper: { threads: 1, steps: 6, batchSize: 2, lr: 1e38, scheduler: 'constant', warmupSteps: 2 },
    });
    const studio = new Studio();
    studio.runDir = started.runDir;
    const root = render(studio);
    await until('the failed record', () => byId(root, 'run-status')?.dataset.status === 'failed', 120_000);
    const bar = byId(root, 'progress') as HTMLProgressElement;
    expect(bar.hasAttribute('value')).toBe(true);
    expect([bar.value, bar.max]).toEqual([2, 6]);
    expect(byId(root, 'progress-text')!.textContent!.trim()).toBe('step 2 of 6 (33.3%)');
    expect(byId(root, 'run-message')!.textContent).toMatch(/^step 3: the loss is NaN/);
    expect(byId(root, 'loss-chart')!.dataset.points).toBe('2');
    expect(byId(root, 'loss-chart-empty')).toBeNull();
  }, 120_000);
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
  }, 120_000);
});

describe('the Train page on a run whose warmup is as long as the run', () => {
  // written out here: the same warning as the run's log line (the command line's words) and as the app says it
  const CLI = "--warmup-steps 100000 is not below the run's 100000 steps: the learning rate rises for the whole run and never reaches --lr 0.0002; use fewer warmup steps";
  const APP = "Warmup steps 100000 is not below the run's 100000 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use fewer warmup steps, or more Steps";

  function checkNotice(root: HTMLElement): void {
    const notice = byId(root, 'run-warnings')!;
    // a region named by its heading, above the charts
    const heading = notice.querySelector('h3')!;
    expect(notice.getAttribute('aria-labelledby')).toBe(heading.id);
    expect(document.getElementById(heading.id)).toBe(heading);
    expect(heading.textContent!.trim()).toBe('A setting of this run looks like a slip');
    expect([...notice.querySelectorAll('li')].map((li) => li.textContent!.trim())).toEqual([`${APP}.`]);
    expect(notice.textContent).not.toContain('--warmup-steps');
    expect(notice.compareDocumentPosition(byId(root, 'loss-chart')!) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    // not a live region: the run's status is the page's one voice
    expect(notice.hasAttribute('aria-live') || notice.hasAttribute('role')).toBe(false);
  }

  it('shows the app\'s words above the charts while it trains, the log the command line\'s; after a reload, from its record', async () => {
    const out = join(harness.home, 'warmup-as-long-as-the-run');
    const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
    // the page follows the folder before the run starts there, so it hears the run's first events
    const studio = new Studio();
    studio.runDir = out;
    let root = render(studio);
    flushSync();
    const run = await call<StartedRun>('startRun', { model: harness.demo.model, data, method: 'lora', out, hyper: { threads: 1, steps: 100_000, warmupSteps: 100_000 } });
    try {
      await until('the warnings', () => byId(root, 'run-warnings') !== null);
      checkNotice(root);
      await until('the log line', () => byId(root, 'run-log')!.textContent!.includes(CLI));
      const lines = [...byId(root, 'run-log')!.querySelectorAll('li')].map((li) => li.textContent);
      expect(lines.filter((l) => l!.startsWith('warning: '))).toEqual([`warning: ${CLI}`]);
    } finally {
      await call('cancelRun', { runId: run.runId });
    }
    await until('cancelled', () => byId(root, 'run-status')?.dataset.status === 'cancelled');

    // a reload: a new page that knows only the folder reads the warning from the run's record
    harness.unmount();
    const reloaded = new Studio();
    reloaded.runDir = out;
    root = render(reloaded);
    await until('the record read', () => byId(root, 'run-status')?.dataset.status === 'cancelled');
    await until('the warnings', () => byId(root, 'run-warnings') !== null);
    checkNotice(root);
    expect(byId(root, 'run-log')!.textContent).not.toContain(CLI); // the service keeps no log lines: the notice is where it is said
  }, 120_000);

  it('shows none for a run with nothing that looks like a slip', async () => {
    const run = await startRun({ steps: 2 }, 2);
    const studio = new Studio();
    studio.runDir = run.runDir;
    const root = render(studio);
    await until('the finished record', () => byId(root, 'run-status')?.dataset.status === 'finished');
    expect(byId(root, 'run-warnings')).toBeNull();
  }, 120_000);
});

describe('the Train page\'s controls and the keyboard', () => {
  // Enter on a focused button is its click: each control disables itself while its request is out,
  // which would leave a keyboard user's focus on the page itself
  it('hands the focus on: Pause to Resume, Resume to Pause, Cancel to "Resume from the last checkpoint"', async () => {
    const run = await startRun({ steps: 100_000 });
    try {
      const studio = new Studio();
      studio.runDir = run.runDir;
      studio.runId = run.runId;
      const root = render(studio);
      const button = (id: string) => byId(root, id) as HTMLButtonElement;
      await until('Pause', () => byId(root, 'pause') !== null && !button('pause').disabled);

      button('pause').focus();
      button('pause').click();
      flushSync();
      expect(button('pause').disabled).toBe(true); // its request is out
      await until('paused', () => byId(root, 'run-status')!.dataset.status === 'paused' && !button('resume').disabled);
      expect(document.activeElement).toBe(button('resume'));

      button('resume').click();
      await until('training again', () => byId(root, 'run-status')!.dataset.status === 'running' && !button('pause').disabled);
      expect(document.activeElement).toBe(button('pause'));

      button('cancel').focus();
      button('cancel').click();
      await until('cancelled', () => byId(root, 'run-status')!.dataset.status === 'cancelled' && byId(root, 'resume-run') !== null);
      expect(document.activeElement).toBe(byId(root, 'resume-run'));
    } finally {
      await harness.service.call('cancelRun', { runId: run.runId });
    }
  }, 120_000);
});

describe('the Train page\'s memory line', () => {
  it('names what the engine does not count, the process itself, so the parts add up to the peak', async () => {
    const run = await startRun({ steps: 100_000 });
    let lastStep: Extract<RunEvent, { type: 'step' }> | null = null;
    const off = harness.service.onEvent((e: ApiEvent) => {
      if (e.type === 'run' && e.runDir === run.runDir && e.event.type === 'step') lastStep = e.event;
    });
    try {
      const studio = new Studio();
      studio.runDir = run.runDir;
      studio.runId = run.runId;
      const root = render(studio);
      // paused: no step comes, so the line is the last step's
      await until('Pause', () => byId(root, 'pause') !== null && !(byId(root, 'pause') as HTMLButtonElement).disabled);
      await call('pauseRun', { runId: run.runId });
      await until('paused', () => byId(root, 'run-status')!.dataset.status === 'paused' && lastStep !== null);
      const mem = lastStep!.memory;
      expect(mem.scratchPeakBytes).toBeGreaterThan(0); // a CPU run: its threads' scratch is a part of its own
      const counted = mem.weightBytes + mem.trainableBytes + mem.activationBytes + mem.scratchPeakBytes;
      expect(mem.peakRssBytes).toBeGreaterThan(counted); // the demo's parts are a small share of a Node process
      await until('the memory line', () => byId(root, 'memory')!.textContent!.includes(formatBytes(mem.peakRssBytes)));
      expect(byId(root, 'memory')!.textContent!.replace(/\s+/g, ' ').trim()).toBe(
        `peak ${formatBytes(mem.peakRssBytes)} — weights ${formatBytes(mem.weightBytes)}, gradients + optimizer ${formatBytes(mem.trainableBytes)}, ` +
          `activations ${formatBytes(mem.activationBytes)}, CPU threads' scratch ${formatBytes(mem.scratchPeakBytes)}, ` +
          `the process itself (Node, the engine's code, the data rows) ${formatBytes(mem.peakRssBytes - counted)}`,
      );
    } finally {
      off();
      await call('cancelRun', { runId: run.runId });
    }
  }, 120_000);
});
