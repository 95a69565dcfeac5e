// The Train page on a run that ended before it took a step. One that failed
// before it wrote anything leaves no folder: the service's failed event,
// replayed as it sends it, is what the page shows. One that failed after its
// record was written keeps its folder: the bar is determinate (a run that
// ended is not still working), the ending's message shows, and the charts say
// no step was logged rather than drawing an empty grid.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { RunEvent } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { eventTap } from '../testing/event-tap.js';
import { pageHarness } from '../testing/page-harness.js';
import { wire } from '../testing/service-bridge.js';

/** sends what the service would, to the page's listeners */
const tap = eventTap();
const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-train-ended-',
  allowedRoots: null,
  load: () => import('./Train.svelte'),
  bridge: tap.bridge,
});

function send(runId: string, runDir: string, event: RunEvent): void {
  tap.send(wire({ type: 'run', runId, runDir, event }));
}

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? '';

describe('the Train page on a run that failed before it trained', () => {
  it('its folder gone: the failure and its message, not "starting…"', async () => {
    // the service removes a new folder the run never wrote to; its failed event reaches the page as it opens
    const runDir = join(harness.home, 'failed-at-start');
    const studio = new Studio();
    studio.runDir = runDir;
    studio.runId = 'failed-at-start-session';
    const root = harness.mount({ studio });
    flushSync(); // mounted: the page listens for events and has asked for the folder's record
    const message = 'task-train.jsonl: none of its 111 rows can be used at Sequence length 20: the first 20 tokens of every row hold no trained token; use a Sequence length of at least 25';
    send(studio.runId, runDir, { type: 'failed', kind: 'error', message, step: null, resumable: false, checkpoint: null });
    await until('the failure shown', () => byId(root, 'train-failed-start') !== null);
    expect(byId(root, 'run-status')!.dataset.status).toBe('failed');
    expect(text(root, 'run-status')).toBe('failed');
    expect(text(root, 'run-message')).toBe(message);
    expect(text(root, 'run-dir')).toBe(runDir);
    expect(root.textContent).not.toContain('starting…');
    expect(byId(root, 'train-empty')).toBeNull();
  });
});

describe('the Train page on a run that ended before its first step, its folder kept', () => {
  // run.json as `train` saves it before the engine is made (execute.ts: the record is claimed, then
  // the engine and the method set up, then total_steps set and the started event sent): a failure in
  // between leaves this record, with no total yet
  function recordOf(runDir: string, message: string): string {
    const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
    return JSON.stringify({ config: { model: harness.demo.model, data, method: 'lora', out: runDir }, status: 'failed', message, steps_done: 0, total_steps: null, resolved: null });
  }

  it('failed: a determinate bar at the start, the failure message, "No steps logged." in place of each chart', async () => {
    const runDir = join(harness.home, 'failed-before-its-engine');
    mkdirSync(runDir);
    const message = 'could not allocate the activation arena (2.0 GiB): out of memory';
    writeFileSync(join(runDir, 'run.json'), recordOf(runDir, message));
    const studio = new Studio();
    studio.runDir = runDir;
    const root = harness.mount({ studio });
    await until('the record read', () => byId(root, 'run-status')?.dataset.status === 'failed');

    const bar = byId(root, 'progress') as HTMLProgressElement;
    expect(bar.hasAttribute('value')).toBe(true);
    expect(bar.value).toBe(0);
    expect(text(root, 'progress-text')).toBe('no step taken');
    expect(text(root, 'run-message')).toBe(message);
    for (const chart of ['loss-chart', 'lr-chart']) {
      expect(text(root, `${chart}-empty`)).toBe('No steps logged.');
      expect(byId(root, chart)!.querySelector('canvas')!.parentElement!.hidden).toBe(true);
    }
  });
});
