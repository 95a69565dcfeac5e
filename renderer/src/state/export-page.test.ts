// Where an export goes when the user does not say.
import { describe, expect, it } from 'vitest';

import type { ApiTransport, RunHistory } from '../../../electron/api/contract.js';
import { DORA_RUN_NOTE, ExportPage, FORMAT_INFO, FULL_RUN_NOTE, GGUF_TYPE_INFO, defaultExportFolder, defaultGgufTypeText, notExportableYet, tryLayoutHelp } from './export-page.svelte.js';
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

describe('GGUF type and base.gguf', () => {
  /**
   * A page whose runHistory says the run used `method` and finished (listing folders fails: no fresh default needed);
   * `lora`: the LoRA part of its run.json config beyond what a run of an older version records (`{ dora: true }`).
   */
  async function pageFor(method: string, lora: Record<string, unknown> = {}): Promise<ExportPage> {
    const config = { method, lora: method === 'lora' || method === 'qlora' ? { rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false, init: 'default', layers: null, ...lora } : null };
    const api: ApiTransport = {
      call: (async (name: string) => {
        if (name === 'runHistory') return { entry: { dir: '/runs/r', model: '/m', method, status: 'finished' }, config };
        throw new Error('no listing here');
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const studio = new Studio();
    studio.runDir = '/runs/r';
    const page = new ExportPage(studio, api);
    await page.followRun('/runs/r');
    return page;
  }

  it('offers a full run the GGUF model only, on, with the reason; its types are the model\'s four', async () => {
    const page = await pageFor('full');
    expect(page.exportable).toBe(true);
    expect(page.offered.map((f) => f.format)).toEqual(['gguf-model']);
    expect(page.chosen).toEqual(['gguf-model']); // PEFT, on by default for adapters, is not offered
    expect(FULL_RUN_NOTE).toMatch(/exports as one GGUF model only\. PEFT adapter, merged model and GGUF LoRA hold or merge an adapter, which a full run has none of/);
    expect(page.ggufTypes).toEqual(['f32', 'f16', 'bf16', 'q8_0']);
    expect(page.ggufBaseOffered).toBe(false);
    // worded by what the run is: its own weights, no adapter merged in
    expect(page.offered[0].help).toBe('one model.gguf (the fine-tuned weights, tokenizer inside) + a Modelfile: run it with llama-cli -m or ollama create.');
    expect(tryLayoutHelp(page.fullRun)).toBe("A fine-tuned model answers best when prompted the way its training rows were laid out: chat rows in the model's chat template, completions as plain text.");
    page.out = '/runs/r-export';
    expect(page.request('/runs/r')).toEqual({ source: '/runs/r', formats: ['gguf-model'], out: '/runs/r-export' });
    page.ggufType = 'q8_0';
    page.ggufBase = true; // not offered: not sent
    expect(page.request('/runs/r')).toEqual({ source: '/runs/r', formats: ['gguf-model'], out: '/runs/r-export', ggufType: 'q8_0' });
    expect(page.canExport).toBe(true);
  });

  it('a GGUF LoRA takes f32 / f16 only (also beside the GGUF model); a type the formats do not take is not sent', async () => {
    const page = await pageFor('lora');
    expect(page.offered.map((f) => f.format)).toEqual(['peft', 'merged', 'gguf', 'gguf-model']);
    expect(page.offered[3].help).toBe('one model.gguf (adapter merged in, tokenizer inside) + a Modelfile: run it with llama-cli -m or ollama create.');
    expect(tryLayoutHelp(page.fullRun)).toMatch(/^An adapter answers best when prompted the way its training rows were laid out/);
    expect(page.ggufTypes).toEqual([]); // PEFT alone: no GGUF type to choose
    page.out = '/o';
    page.ggufType = 'q8_0';
    page.toggle('gguf-model', true);
    expect(page.ggufTypes).toEqual(['f32', 'f16', 'bf16', 'q8_0']);
    expect(page.request('/runs/r').ggufType).toBe('q8_0');
    page.toggle('gguf', true);
    expect(page.ggufTypes).toEqual(['f32', 'f16']);
    expect(page.requestGgufType).toBeUndefined(); // q8_0 is not an adapter type: the defaults apply
    page.ggufType = 'f16';
    page.ggufBase = true;
    expect(page.request('/runs/r')).toEqual({ source: '/runs/r', formats: ['peft', 'gguf', 'gguf-model'], out: '/o', ggufType: 'f16', ggufBase: true });
    page.toggle('gguf', false);
    expect(page.request('/runs/r')).toEqual({ source: '/runs/r', formats: ['peft', 'gguf-model'], out: '/o', ggufType: 'f16' });
  });

  it('offers a DoRA run (LoRA or QLoRA) no GGUF LoRA, saying why and what to choose; a GGUF LoRA left on is not sent', async () => {
    for (const method of ['lora', 'qlora']) {
      const page = await pageFor(method, { dora: true });
      expect(page.runDora, method).toBe(true);
      expect(page.exportable).toBe(true);
      expect(page.offered.map((f) => f.format), method).toEqual(['peft', 'merged', 'gguf-model']);
      // chosen for another run before (the page's choices stay when the run changes): not offered, so not sent
      page.toggle('gguf', true);
      page.toggle('gguf-model', true);
      page.ggufBase = true;
      page.out = '/o';
      expect(page.ggufBaseOffered).toBe(false);
      expect(page.ggufTypes).toEqual(['f32', 'f16', 'bf16', 'q8_0']); // the GGUF model's, not an adapter's two
      expect(page.request('/runs/r')).toEqual({ source: '/runs/r', formats: ['peft', 'gguf-model'], out: '/o' });
    }
    expect(DORA_RUN_NOTE).toMatch(/^A DoRA run has no GGUF LoRA: llama\.cpp and Ollama adapters hold only the two low-rank matrices, not the magnitude DoRA learns/);
    expect(DORA_RUN_NOTE).toMatch(/choose GGUF model \(one model\.gguf with the adapter merged in\); Merged model/);
    expect(DORA_RUN_NOTE).not.toMatch(/\n|--/);
    // the labels the note names are the format list's own
    expect(FORMAT_INFO.filter((f) => DORA_RUN_NOTE.includes(f.label)).map((f) => f.format)).toEqual(['peft', 'merged', 'gguf', 'gguf-model']);
  });

  it('a LoRA run without DoRA, and one whose run.json is from before DoRA, are offered the GGUF LoRA', async () => {
    const off = await pageFor('lora', { dora: false });
    expect(off.runDora).toBe(false);
    expect(off.offered.map((f) => f.format)).toEqual(['peft', 'merged', 'gguf', 'gguf-model']);
    const old = await pageFor('lora');
    expect(old.runDora).toBe(false);
    expect(old.offered.map((f) => f.format)).toEqual(['peft', 'merged', 'gguf', 'gguf-model']);
  });

  it('says what the default writes, and each type\'s size and loss in one line', () => {
    expect(defaultGgufTypeText(['gguf'], false)).toBe('Default: f32 for the adapter');
    expect(defaultGgufTypeText(['gguf'], true)).toBe("Default: f32 for the adapter; the model's own 16-bit type (an F32 model: f16) for base.gguf");
    expect(defaultGgufTypeText(['gguf-model'], false)).toBe("Default: the model's own 16-bit type (an F32 model: f16) for the GGUF model");
    expect(defaultGgufTypeText(['gguf-model'], false, true)).toBe('Default: f32 for the GGUF model (the fine-tuned weights as trained)');
    expect(GGUF_TYPE_INFO.map((t) => t.type)).toEqual(['f32', 'f16', 'bf16', 'q8_0']);
    for (const t of GGUF_TYPE_INFO) {
      expect(t.help).toMatch(new RegExp(`^${t.type}: .*bytes a weight.*%`));
      expect(t.help).not.toMatch(/\n/);
    }
    expect(GGUF_TYPE_INFO.find((t) => t.type === 'q8_0')!.help).toMatch(/about half of f16; within 0\.3% of the f32 loss/);
  });
});
