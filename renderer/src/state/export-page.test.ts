// Where an export goes when the user does not say.
import { describe, expect, it } from 'vitest';

import type { ApiTransport, RunHistory } from '../../../electron/api/contract.js';
import { ExportPage, FORMAT_INFO, defaultExportFolder, notExportableYet } from './export-page.svelte.js';
import { Studio } from './studio.svelte.js';

describe('defaultExportFolder', () => {
  it('is beside the run folder (the service refuses an export inside its source), named after the run', () => {
    expect(defaultExportFolder('/home/me/.peft-studio/runs/20261128-220958-lora')).toBe('/home/me/.peft-studio/runs/20261128-220958-lora-export');
    expect(defaultExportFolder('/data/run/')).toBe('/data/run-export');
    expect(defaultExportFolder('C:\\Users\\me\\runs\\r1')).toBe('C:\\Users\\me\\runs\\r1-export');
    expect(defaultExportFolder('C:\\Users\\me\\runs\\r1\\')).toBe('C:\\Users\\me\\runs\\r1-export');
  });
  it('numbers the later defaults from 2', () => {
    expect([1, 2, 3].map((n) => defaultExportFolder('/r/run', n))).toEqual(['/r/run-export', '/r/run-export-2', '/r/run-export-3']);
  });
});

describe('notExportableYet', () => {
  it('lets a finished run (or a folder that is no run) be exported', () => {
    expect(notExportableYet('finished')).toBeNull();
    expect(notExportableYet(null)).toBeNull();
  });
  it('says in the app\'s words why a run that has not finished cannot be exported', () => {
    expect(notExportableYet('running')).toBe('The run is still training: export it once it has finished. Try it below meanwhile (it uses the newest checkpoint).');
    expect(notExportableYet('interrupted')).toBe('The run was interrupted before its last step: resume it from Runs, and export it once it has finished.');
    expect(notExportableYet('failed')).toBe('The run failed before its last step: resume it from Runs, and export it once it has finished.');
    for (const s of ['running', 'paused', 'cancelled', 'failed', 'interrupted', 'missing'] as const) expect(notExportableYet(s)).not.toMatch(/--|train |resume [/]/);
  });
});

describe('ExportPage before the run\'s status is known', () => {
  const RUN = '/runs/20261128-lora';
  /** runHistory answers when the test says; listing folders fails (no fresh default needed here) */
  function scripted(): { api: ApiTransport; answer: (h: RunHistory) => void; fail: (e: Error) => void } {
    let answer!: (h: RunHistory) => void;
    let fail!: (e: Error) => void;
    const history = new Promise<RunHistory>((resolve, reject) => {
      answer = resolve;
      fail = reject;
    });
    const api: ApiTransport = {
      call: (async (method: string) => {
        if (method === 'runHistory') return history;
        throw new Error('no listing here');
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    return { api, answer, fail };
  }
  const finished = {
    dir: RUN, runId: null, config: {} as never, steps: [], evals: [],
    entry: { dir: RUN, model: '/m', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 4, total_steps: 4, best_eval_loss: null, adapter: null, resumable: false, message: null },
  } as unknown as RunHistory;

  it('keeps Export off, saying why, while the status is read; on once it says finished', async () => {
    const { api, answer } = scripted();
    const studio = new Studio();
    studio.runDir = RUN;
    const page = new ExportPage(studio, api);
    const following = page.followRun(RUN);
    expect(page.canExport).toBe(false);
    expect(page.notReady).toBe('Reading the run\'s status…');
    answer(finished);
    await following;
    expect(page.notReady).toBeNull();
    expect(page.canExport).toBe(true);
  });

  it('keeps Export off when the run\'s record cannot be read, with the reason', async () => {
    const { api, fail } = scripted();
    const studio = new Studio();
    studio.runDir = RUN;
    const page = new ExportPage(studio, api);
    const following = page.followRun(RUN);
    fail(new Error('No answer from PEFT Studio: the connection to it was lost.'));
    await following;
    expect(page.canExport).toBe(false);
    expect(page.notReady).toMatch(/^Export waits until it is known whether the run has finished.*No answer from PEFT Studio/);
  });
});

describe('formats', () => {
  it('offers the whole-model GGUF with a one-line help, off by default', () => {
    const gguf = FORMAT_INFO.find((f) => f.format === 'gguf-model')!;
    expect(gguf.label).toBe('GGUF model');
    expect(gguf.help).toMatch(/model\.gguf .*llama-cli -m .*ollama create/);
    expect(gguf.help).not.toMatch(/\n/);
    expect(FORMAT_INFO.map((f) => f.format)).toEqual(['peft', 'merged', 'gguf', 'gguf-model']);
    expect(new ExportPage(new Studio(), {} as ApiTransport).formats['gguf-model']).toBe(false); // off by default: PEFT is
  });
});
