// The Train page holds the time left against what the check before the start
// said (RunCheck.time), for the run that check was for: rendered in jsdom
// against the real studio service on the bundled demo model.
import { describe, expect, it } from 'vitest';

import type { ApiEvent, ApiMethod, RunCheck, StartedRun } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';
import { callOk } from '../../../electron/testing/service-calls.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-train-time-',
  allowedRoots: null,
  load: () => import('./Train.svelte'),
});

const call = <T>(method: ApiMethod, request: unknown) => callOk<T>(harness.service, method, request);

describe('the Train page and the estimate said before the start', () => {
  it('shows the estimate said when this run started, and none for another run', async () => {
    const data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path;
    const settings = { model: harness.demo.model, data, method: 'lora', hyper: { threads: 1, steps: 2, device: 'cpu' } };
    const check = await call<RunCheck>('checkRun', settings);
    expect(check.time).not.toBeNull();
    let finished = false;
    let dir = '';
    const off = harness.service.onEvent((e: ApiEvent) => {
      if (e.type === 'run' && e.runDir === dir && e.event.type === 'finished') finished = true;
    });
    const started = await call<StartedRun>('startRun', { ...settings, out: check.config!.out });
    dir = started.runDir;
    await until('the run to finish', () => finished);
    off();

    const studio = new Studio();
    // what the Hyperparameters page's Start records (HyperparametersTime.test.ts checks it does)
    studio.startEstimate = { runDir: started.runDir, text: check.time!.text };
    studio.runDir = started.runDir;
    const root = harness.mount({ studio });
    await until('the record', () => byId(root, 'run-status')?.dataset.status === 'finished');
    expect(byId(root, 'time-estimate')!.textContent).toBe(check.time!.text);

    // the estimate of another run says nothing about this one
    studio.startEstimate = { runDir: `${started.runDir}-other`, text: check.time!.text };
    await until('the line gone', () => byId(root, 'time-estimate') === null);
  }, 120_000);

});
