// The Export & try step rendered in jsdom against the real studio service
// (electron/service, in this process, behind the preload bridge the desktop
// app has), on runs of the bundled demo model trained here:
// - a full fine-tune is tried as its own model (its run folder, no adapter),
//   its answer titled "Fine-tuned model";
// - a run that has not finished cannot be exported (the reason says why, and
//   follows the run's status), and Try names the checkpoint it used;
// - a merged export lists every file the folder holds (read here with fs);
// - a second export goes to a fresh default folder (<run>-export-2), and a typed
//   folder is used as shown, without "Use this path";
// - the seed field refuses exactly what the service refuses;
// - Try lays the prompt out as the run's rows were (a run on chat rows: the
//   chat template, on both sides), shows what the model was given, and takes
//   another layout when chosen; a system message needs chat or alpaca;
// - a full fine-tune is offered the GGUF model only (saying why), in the GGUF
//   type chosen, and exported through the service (the file read here);
// - a GGUF LoRA takes f32 / f16 only, and writes base.gguf beside the adapter
//   when asked (the file read here), its check named in the table;
// - a DoRA run is offered no GGUF LoRA (saying why and what instead), and its
//   GGUF model (the DoRA adapter merged in) exports and passes the reload check;
// - what the user set in Try (prompt, edited and emptied sampling fields) is
//   kept when the page is left and opened again, and for a run on another
//   model, whose settings fill only the fields not changed; an emptied field
//   is the model's own, not "(yours)"; the reset moves the focus to the first
//   field; a generation_config.json that is there but broken is named as such.
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { flushSync } from 'svelte';
import { beforeAll, describe, expect, it } from 'vitest';

import type { ApiEvent, ApiTransport, GenerateRequest } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { DORA_RUN_NOTE, FULL_RUN_NOTE, GGUF_TYPE_INFO } from '../state/export-page.svelte.js';
import { MAX_SEED, trySettingsErrors } from '../state/try-panel.svelte.js';
import { byId, choose, optionsOf, type, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-export-page-',
  allowedRoots: null,
  load: () => import('./Export.svelte'),
});
let api: ApiTransport;
const events: ApiEvent[] = [];
beforeAll(async () => {
  harness.service.onEvent((e) => events.push(e));
  // the app's api module, on the bridge the harness has set
  api = (await import('../api/index.js')).api;
});

const PROMPT = 'Question: What color is the fox?\nAnswer:';


/** Trains the demo model (or `model`) for a few steps (on its task rows, or `data`; `hyper`: further settings) and waits for the end. */
async function train(method: 'lora' | 'full', out: string, data = harness.demo.datasets.find((d) => d.name === 'task-train')!.path, hyper: { dora?: boolean } = {}, model = harness.demo.model): Promise<string> {
  const started = await api.call('startRun', {
    model, data, method, out,
    hyper: { steps: 4, threads: 2, batchSize: 2, ...hyper },
  });
  await until(`the ${method} run`, () => events.some((e) => e.type === 'run' && e.runId === started.runId && e.event.type === 'finished'), 120_000);
  return started.runDir;
}

const optionsText = (root: HTMLElement) => [...(byId(root, 'try-layout') as HTMLSelectElement).options].map((o) => o.textContent?.trim());

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? '';

/**
 * A GGUF file read by @huggingface/gguf, an independent reader. Under jsdom it
 * takes the browser path (no local files), so it is handed the file through
 * its fetch hook, answering its Range requests from disk.
 */
async function readGguf(file: string): Promise<{ metadata: Record<string, unknown>; tensorInfos: { name: string; dtype: number }[] }> {
  const bytes = readFileSync(file);
  const fetchRange = async (_url: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const range = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get('Range') ?? '');
    const [from, to] = range ? [Number(range[1]), Math.min(Number(range[2]), bytes.length - 1)] : [0, bytes.length - 1];
    return new Response(bytes.subarray(from, to + 1), { status: 206, headers: { 'content-range': `bytes ${from}-${to}/${bytes.length}` } });
  };
  const parsed = await hfGguf(`https://local.invalid/${file}`, { fetch: fetchRange });
  return { metadata: parsed.metadata as unknown as Record<string, unknown>, tensorInfos: parsed.tensorInfos.map((t) => ({ name: t.name, dtype: Number(t.dtype) })) };
}

async function exportAndWait(root: HTMLElement): Promise<void> {
  (byId(root, 'export-button') as HTMLButtonElement).click();
  await until('the export', () => byId(root, 'export-result') !== null || byId(root, 'export-error') !== null, 120_000);
  expect(text(root, 'export-error')).toBe('');
}

async function render(runDir: string, studio = new Studio()): Promise<{ root: HTMLElement; studio: Studio }> {
  studio.model ??= harness.demo.model;
  studio.runDir = runDir;
  const root = harness.mount({ studio });
  // the run's method badge: its history is read
  await until('the run read', () => root.querySelector('.badge.method') !== null);
  return { root, studio };
}

async function generateBoth(root: HTMLElement): Promise<void> {
  type(root, 'try-prompt', PROMPT);
  type(root, 'try-max-tokens', '6');
  (byId(root, 'generate-button') as HTMLButtonElement).click();
  await until('both answers (or an error)', () => byId(root, 'try-error') !== null || text(root, 'adapter-stats') !== '', 120_000);
}

const settings = { prompt: PROMPT, maxNewTokens: 6, temperature: 0, seed: 0 };

describe('Try on a full fine-tuning run', () => {
  it('generates with the run folder as the model and no adapter, titled as the fine-tuned model', async () => {
    const runDir = await train('full', join(harness.home, 'full-run'));
    const { root } = await render(runDir);
    expect(text(root, 'export-run-method')).toBe('Full fine-tuning');
    expect(text(root, 'try-trained-title')).toBe('Fine-tuned model');
    await until('the run\'s layout read', () => optionsText(root)[0] === 'As the run was trained (plain text)');
    expect(byId(root, 'try-system')).toBeNull();
    await generateBoth(root);
    expect(byId(root, 'try-error')).toBeNull();
    // the same request made directly: the run folder is the model
    const direct = await api.call('generate', { ...settings, model: runDir, adapter: null } satisfies GenerateRequest);
    expect(byId(root, 'adapter-output')?.textContent).toBe(direct.text);
    const base = await api.call('generate', { ...settings, model: harness.demo.model, adapter: null });
    expect(byId(root, 'base-output')?.textContent).toBe(base.text);
    expect(byId(root, 'try-checkpoint')).toBeNull();
    // the sampling fields start from the model's own settings, as `peft-studio generate` takes them (the demo's
    // generation_config.json sets none: transformers' defaults, greedy), saying so; each answer says what it used
    await until("the model's settings read", () => text(root, 'try-sampling-source') !== '');
    expect(text(root, 'try-sampling-source')).toBe("Filled in with transformers' defaults: the model's generation_config.json sets none of these.");
    const valueOf = (id: string) => (byId(root, id) as HTMLInputElement).value;
    const fieldIds = ['try-temperature', 'try-top-k', 'try-top-p', 'try-min-p', 'try-typical-p', 'try-epsilon-cutoff', 'try-eta-cutoff', 'try-repetition-penalty', 'try-no-repeat-ngram-size'];
    expect(fieldIds.map(valueOf)).toEqual(['0', '50', '1', '0', '1', '0', '0', '1', '0']);
    // the advanced fields say where their value came from too
    for (const id of ['try-typical-p', 'try-epsilon-cutoff', 'try-eta-cutoff']) expect(text(root, `${id}-origin`), id).toBe('(default)');
    expect(text(root, 'try-temperature-origin')).toBe('(default)');
    expect(valueOf('try-seed')).toBe('42');
    expect(byId(root, 'try-sampling-reset')).toBeNull(); // nothing changed yet
    // any value the service takes can be typed (a step of 0.05 made the browser refuse 0.92 or 1.03 and send
    // nothing, saying only "nearest valid values"); the page checks the fields itself (novalidate)
    expect((root.querySelector('form.try') as HTMLFormElement).noValidate).toBe(true);
    for (const id of ['try-temperature', 'try-top-p', 'try-min-p', 'try-typical-p', 'try-epsilon-cutoff', 'try-eta-cutoff', 'try-repetition-penalty']) expect((byId(root, id) as HTMLInputElement).step, id).toBe('any');
    expect((byId(root, 'try-no-repeat-ngram-size') as HTMLInputElement).step).toBe('1');
    expect((byId(root, 'try-min-p') as HTMLInputElement).max).toBe('1');
    expect((byId(root, 'try-repetition-penalty') as HTMLInputElement).min).toBe('');  // > 0, said by the page
    // typical-p: > 0 (said by the page) and <= 1; the cutoffs: >= 0 and < 1 (said by the page)
    expect(['try-typical-p', 'try-epsilon-cutoff', 'try-eta-cutoff'].map((id) => [(byId(root, id) as HTMLInputElement).min, (byId(root, id) as HTMLInputElement).max]))
      .toEqual([['', '1'], ['0', ''], ['0', '']]);
    for (const side of ['base', 'adapter']) expect(text(root, `${side}-sampling`)).toBe('greedy decoding');
    // a repetition penalty given on the page reaches the model, as the same request made directly
    type(root, 'try-repetition-penalty', '1.3');
    (byId(root, 'generate-button') as HTMLButtonElement).click();
    await until('the penalized answers', () => byId(root, 'try-error') !== null || text(root, 'adapter-sampling') === 'greedy decoding, repetition penalty 1.3', 120_000);
    expect(byId(root, 'try-error')).toBeNull();
    const penalized = await api.call('generate', { ...settings, model: harness.demo.model, adapter: null, repetitionPenalty: 1.3 });
    expect(byId(root, 'base-output')?.textContent).toBe(penalized.text);
    expect(text(root, 'base-sampling')).toBe('greedy decoding, repetition penalty 1.3');
    expect(text(root, 'try-repetition-penalty-origin')).toBe('(yours)');
    // the n-gram ban given on the page reaches the model too; reset puts the model's settings back
    type(root, 'try-repetition-penalty', '1');
    type(root, 'try-no-repeat-ngram-size', '2');
    (byId(root, 'generate-button') as HTMLButtonElement).click();
    await until('the answers without repeated 2-grams', () => byId(root, 'try-error') !== null || text(root, 'adapter-sampling') === 'greedy decoding, no repeated 2-grams', 120_000);
    expect(byId(root, 'try-error')).toBeNull();
    const banned = await api.call('generate', { ...settings, model: harness.demo.model, adapter: null, noRepeatNgramSize: 2 });
    expect(byId(root, 'base-output')?.textContent).toBe(banned.text);
    (byId(root, 'try-sampling-reset') as HTMLButtonElement).click();
    await until('the fields reset', () => valueOf('try-no-repeat-ngram-size') === '0');
    expect(text(root, 'try-no-repeat-ngram-size-origin')).toBe('(default)');
    expect(byId(root, 'try-sampling-reset')).toBeNull();
  }, 240_000);
});

describe('Try lays the prompt out as the run was trained', () => {
  it('a run on chat rows: both sides get the chat template and show it; plain text when chosen; a system message needs chat or alpaca', async () => {
    const data = join(harness.home, 'chat-rows.jsonl');
    const rows = readFileSync(harness.demo.datasets.find((d) => d.name === 'task-train')!.path, 'utf8').trim().split('\n').slice(0, 40).map((l) => JSON.parse(l) as { prompt: string; completion: string });
    // the demo's chat template writes a user turn as "Question: …\nAnswer:" and the assistant's after a space
    writeFileSync(data, rows.map((r) => JSON.stringify({ messages: [{ role: 'user', content: r.prompt.replace(/^Question: /, '').replace(/\nAnswer:$/, '') }, { role: 'assistant', content: r.completion.trim() }] })).join('\n') + '\n');
    const runDir = await train('lora', join(harness.home, 'chat-run'), data);
    const { root } = await render(runDir);
    expect((byId(root, 'try-layout') as HTMLSelectElement).value).toBe('trained');
    await until('the run\'s layout read', () => optionsText(root)[0] === 'As the run was trained (chat template)');
    expect(byId(root, 'try-system')).not.toBeNull(); // a chat layout takes a system message
    const question = 'What color is the fox?';
    type(root, 'try-prompt', question);
    type(root, 'try-max-tokens', '6');
    (byId(root, 'generate-button') as HTMLButtonElement).click();
    await until('both answers', () => byId(root, 'try-error') !== null || text(root, 'adapter-stats') !== '', 120_000);
    expect(byId(root, 'try-error')).toBeNull();
    const given = (side: string) => byId(root, `${side}-prompt`)?.querySelector('pre')?.textContent;
    for (const side of ['base', 'adapter']) {
      expect(text(root, `${side}-prompt`)).toMatch(/^What the model was given: the model's chat template, \d+ tokens/);
      expect(given(side)).toBe(`<s>${PROMPT}`);
    }
    const request = { prompt: question, promptFormat: 'chat', maxNewTokens: 6, temperature: 0, seed: 0 } as const;
    expect(byId(root, 'adapter-output')?.textContent).toBe((await api.call('generate', { ...request, model: harness.demo.model, adapter: runDir })).text);
    expect(byId(root, 'base-output')?.textContent).toBe((await api.call('generate', { ...request, model: harness.demo.model, adapter: null })).text);

    choose(root, 'try-layout', 'plain');
    expect(byId(root, 'try-system')).toBeNull(); // plain text takes none
    (byId(root, 'generate-button') as HTMLButtonElement).click();
    await until('the plain answers', () => text(root, 'adapter-prompt').includes('the text as written'), 120_000);
    expect(given('adapter')).toBe(`<s>${question}`); // the BOS the model is given, spelled out

    choose(root, 'try-layout', 'chat');
    type(root, 'try-system', 'Answer in one word.');
    expect(byId(root, 'try-system-error')).toBeNull();
    choose(root, 'try-layout', 'plain');
    expect(text(root, 'try-system-error')).toBe('A system message needs the chat or alpaca layout; plain text is continued as written.');
    expect((byId(root, 'generate-button') as HTMLButtonElement).disabled).toBe(true);
  }, 240_000);
});

describe('export of a full fine-tuning run', () => {
  it('offers the GGUF model only, saying why; exports it in the chosen type through the service', async () => {
    const runDir = await train('full', join(harness.home, 'full-export-run'));
    const { root } = await render(runDir);
    await until('the method', () => byId(root, 'format-gguf-model') !== null);
    expect(byId(root, 'export-not-lora')).toBeNull();
    expect(text(root, 'export-full-note')).toBe(FULL_RUN_NOTE);
    for (const f of ['peft', 'merged', 'gguf']) expect(byId(root, `format-${f}`), f).toBeNull();
    expect((byId(root, 'format-gguf-model') as HTMLInputElement).checked).toBe(true);
    // worded by what the run is: no adapter is merged in, and Try's layout note is about the fine-tuned model
    expect((byId(root, 'format-gguf-model') as HTMLInputElement).labels![0].textContent).toBe(
      'GGUF model one model.gguf (the fine-tuned weights, tokenizer inside) + a Modelfile: run it with llama-cli -m or ollama create.',
    );
    expect(text(root, 'try-layout-help')).toBe("A fine-tuned model answers best when prompted the way its training rows were laid out: chat rows in the model's chat template, completions as plain text.");
    expect(byId(root, 'gguf-base')).toBeNull();
    expect(optionsOf(root, 'gguf-type')).toEqual(['default', 'f32', 'f16', 'bf16', 'q8_0']);
    expect(text(root, 'gguf-type-help')).toBe('Default: f32 for the GGUF model (the fine-tuned weights as trained)');
    // f32: a few steps at the default learning rate are below f16's step (the check would refuse f16, saying so)
    choose(root, 'gguf-type', 'f32');
    expect(text(root, 'gguf-type-help')).toBe(GGUF_TYPE_INFO[0].help);
    await until('the default folder', () => text(root, 'export-out') !== '');
    await exportAndWait(root);
    const out = `${runDir}-export`;
    expect(readdirSync(out).sort()).toEqual(['Modelfile', 'model.gguf']);
    const listed = [...root.querySelectorAll('[data-testid="export-files-gguf-model"] li code')].map((c) => c.textContent);
    expect(listed).toEqual(['model.gguf', 'Modelfile']);
    expect(byId(root, 'export-check-gguf-model')?.querySelector('td')?.textContent).toBe('GGUF model');
    expect(text(root, 'export-result')).toContain('the fine-tuned model scores');
    // read without the app's code: an all-f32 file (general.file_type 0) named after the run
    const parsed = await readGguf(join(out, 'model.gguf'));
    expect(parsed.metadata['general.file_type']).toBe(0);
    expect(readFileSync(join(out, 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/model\.gguf$/m);
  }, 240_000);
});

describe('export of a DoRA run', () => {
  it('offers no GGUF LoRA, saying why and what instead; its GGUF model exports and passes the reload check', async () => {
    const runDir = await train('lora', join(harness.home, 'dora-run'), undefined, { dora: true });
    const { root } = await render(runDir);
    await until('the DoRA note', () => byId(root, 'export-dora-note') !== null);
    expect(text(root, 'export-dora-note')).toBe(DORA_RUN_NOTE);
    expect(byId(root, 'export-full-note')).toBeNull();
    expect(byId(root, 'format-gguf')).toBeNull();
    for (const f of ['peft', 'merged', 'gguf-model']) expect(byId(root, `format-${f}`), f).not.toBeNull();
    (byId(root, 'format-peft') as HTMLInputElement).click();
    (byId(root, 'format-gguf-model') as HTMLInputElement).click();
    flushSync();
    expect(byId(root, 'gguf-base')).toBeNull();
    expect(optionsOf(root, 'gguf-type')).toEqual(['default', 'f32', 'f16', 'bf16', 'q8_0']);
    choose(root, 'gguf-type', 'f32');
    await until('the default folder', () => text(root, 'export-out') !== '');
    await exportAndWait(root);
    const out = `${runDir}-export`;
    expect(readdirSync(out).sort()).toEqual(['Modelfile', 'model.gguf']);
    expect(byId(root, 'export-check-gguf-model')?.querySelector('td')?.textContent).toBe('GGUF model');
    expect(byId(root, 'export-check-gguf-model')?.querySelector('.badge')?.textContent).toBe('passed');
    // read without the app's code: one all-f32 model, no adapter tensor left in it
    const parsed = await readGguf(join(out, 'model.gguf'));
    expect(parsed.metadata['general.file_type']).toBe(0);
    expect(parsed.tensorInfos.some((t) => /lora|magnitude/.test(t.name))).toBe(false);
  }, 240_000);
});

describe('a run that has not finished', () => {
  it('a full fine-tune is tried as its newest checkpoint, which is a whole model', async () => {
    const started = await api.call('startRun', {
      model: harness.demo.model, data: harness.demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'full', out: join(harness.home, 'paused-full-run'),
      hyper: { steps: 100_000, threads: 2, batchSize: 2, saveEvery: 2 },
    });
    await until('a checkpoint', () => events.some((e) => e.type === 'run' && e.runId === started.runId && e.event.type === 'checkpoint'), 120_000);
    await api.call('pauseRun', { runId: started.runId });
    await until('the pause', () => events.some((e) => e.type === 'run' && e.runId === started.runId && e.event.type === 'paused'), 60_000);
    try {
      const { root } = await render(started.runDir);
      await generateBoth(root);
      expect(text(root, 'try-error')).toBe('');
      const checkpoint = (await api.call('runHistory', { runDir: started.runDir })).entry.adapter!;
      expect(text(root, 'try-checkpoint')).toBe(`The fine-tuned model answer used the newest checkpoint, step ${/step-(\d+)$/.exec(checkpoint)![1]} (the run has not finished): ${checkpoint}`);
      const direct = await api.call('generate', { ...settings, model: checkpoint, adapter: null });
      expect(byId(root, 'adapter-output')?.textContent).toBe(direct.text);
    } finally {
      await api.call('cancelRun', { runId: started.runId });
    }
  }, 300_000);


  it('cannot be exported (the reason follows its status), and Try names the checkpoint it used', async () => {
    const started = await api.call('startRun', {
      model: harness.demo.model, data: harness.demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'lora', out: join(harness.home, 'paused-run'),
      hyper: { steps: 100_000, threads: 2, batchSize: 2, saveEvery: 2 },
    });
    const isCheckpoint = (e: ApiEvent) => e.type === 'run' && e.runId === started.runId && e.event.type === 'checkpoint';
    await until('a checkpoint', () => events.some(isCheckpoint), 120_000);
    await api.call('pauseRun', { runId: started.runId });
    await until('the pause', () => events.some((e) => e.type === 'run' && e.runId === started.runId && e.event.type === 'paused'), 60_000);

    const { root } = await render(started.runDir);
    await until('the status', () => byId(root, 'export-not-ready') !== null);
    expect(text(root, 'export-not-ready')).toBe('The run is paused: continue it on the Train page and export it once it has finished.');
    expect((byId(root, 'export-button') as HTMLButtonElement).disabled).toBe(true);

    await generateBoth(root);
    expect(byId(root, 'try-error')).toBeNull();
    const entry = (await api.call('runHistory', { runDir: started.runDir })).entry;
    expect(entry.adapter).toMatch(/[\\/]checkpoints[\\/]step-\d+$/);
    const step = Number(/step-(\d+)$/.exec(entry.adapter!)![1]);
    expect(text(root, 'try-checkpoint')).toBe(`The adapter answer used the newest checkpoint, step ${step} (the run has not finished): ${entry.adapter}`);
    // the service's notice says the same: it is not repeated below the answers
    expect(byId(root, 'try-notices')?.textContent ?? '').not.toContain(entry.adapter);

    // the run ends (cancelled): the page reads the new status from the run's events
    await api.call('cancelRun', { runId: started.runId });
    await until('the new reason', () => text(root, 'export-not-ready').includes('was cancelled'), 60_000);
    expect(text(root, 'export-not-ready')).toBe('The run was cancelled before its last step: resume it from Runs, and export it once it has finished.');
  }, 300_000);
});

describe('export of a finished LoRA run', () => {
  let runDir: string;
  beforeAll(async () => {
    runDir = await train('lora', join(harness.home, 'lora-run'));
  }, 180_000);

  it('lists every file of a merged export, and offers <run>-export-2 once <run>-export holds one', async () => {
    const { root } = await render(runDir);
    await until('the default folder', () => text(root, 'export-out') !== '');
    expect(text(root, 'export-out')).toBe(`${runDir}-export`);
    (byId(root, 'format-peft') as HTMLInputElement).click();
    (byId(root, 'format-merged') as HTMLInputElement).click();
    flushSync();
    (byId(root, 'export-button') as HTMLButtonElement).click();
    await until('the export', () => byId(root, 'export-result') !== null || byId(root, 'export-error') !== null, 120_000);
    expect(text(root, 'export-error')).toBe('');
    const listed = [...root.querySelectorAll('[data-testid="export-files-merged"] li code')].map((c) => c.textContent);
    // what is on disk, read without the app's code: the weights and every side file (config, tokenizer, ...)
    const onDisk = readdirSync(`${runDir}-export`).sort();
    expect(onDisk).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']));
    expect([...listed].sort()).toEqual(onDisk);
    // the reload check names the format as the format list does, not by its id
    expect(byId(root, 'export-check-merged')?.querySelector('td')?.textContent).toBe('Merged model');
    // the next export would fail on <run>-export (not empty): a fresh default is offered
    await until('a fresh default', () => text(root, 'export-out') === `${runDir}-export-2`);
    expect((byId(root, 'export-out-input') as HTMLInputElement).value).toBe(`${runDir}-export-2`);
  }, 180_000);

  it('offers the first free default when the page opens again, and exports there', async () => {
    const { root } = await render(runDir);
    await until('the default folder', () => text(root, 'export-out') === `${runDir}-export-2`, 10_000);
    (byId(root, 'export-button') as HTMLButtonElement).click();
    await until('the export', () => byId(root, 'export-result') !== null || byId(root, 'export-error') !== null, 120_000);
    expect(byId(root, 'export-error')).toBeNull();
    expect(readdirSync(`${runDir}-export-2`)).toContain('adapter_model.safetensors');
  }, 180_000);

  it('exports to a typed folder without "Use this path"', async () => {
    const { root } = await render(runDir);
    await until('the default folder', () => text(root, 'export-out') !== '');
    const typed = join(harness.home, 'typed', 'adapter');
    type(root, 'export-out-input', typed);
    expect(text(root, 'export-out')).toBe(typed);
    (byId(root, 'export-button') as HTMLButtonElement).click();
    await until('the export', () => byId(root, 'export-result') !== null || byId(root, 'export-error') !== null, 120_000);
    expect(byId(root, 'export-error')).toBeNull();
    expect(readdirSync(typed)).toContain('adapter_config.json');
    expect(existsSync(`${runDir}-export-3`)).toBe(false);
  }, 180_000);

  it('a GGUF LoRA takes f32 or f16; base.gguf beside it on request, checked and listed', async () => {
    const { root } = await render(runDir);
    await until('the default folder', () => text(root, 'export-out') !== '');
    expect(byId(root, 'gguf-type')).toBeNull(); // PEFT alone: no GGUF type
    expect(byId(root, 'export-full-note')).toBeNull();
    (byId(root, 'format-peft') as HTMLInputElement).click();
    (byId(root, 'format-gguf') as HTMLInputElement).click();
    flushSync();
    expect(optionsOf(root, 'gguf-type')).toEqual(['default', 'f32', 'f16']);
    expect(text(root, 'gguf-type-help')).toBe('Default: f32 for the adapter');
    choose(root, 'gguf-type', 'f16');
    expect(text(root, 'gguf-type-help')).toBe(GGUF_TYPE_INFO[1].help);
    (byId(root, 'gguf-base') as HTMLInputElement).click();
    flushSync();
    const typed = join(harness.home, 'typed', 'gguf-base');
    type(root, 'export-out-input', typed);
    await exportAndWait(root);
    expect(readdirSync(typed).sort()).toEqual(['Modelfile', 'adapter.gguf', 'base.gguf']);
    const listed = [...root.querySelectorAll('[data-testid="export-files-gguf"] li code')].map((c) => c.textContent);
    expect(listed).toEqual(['adapter.gguf', 'base.gguf', 'Modelfile']);
    expect(byId(root, 'export-check-gguf')?.querySelector('td')?.textContent).toBe('GGUF LoRA');
    expect(byId(root, 'export-check-gguf-base')?.querySelector('td')?.textContent).toBe('GGUF LoRA on base.gguf');
    expect(byId(root, 'export-qlora-note')).toBeNull(); // LoRA: the base is the one trained on
    // the types chosen, read without the app's code: F16 adapter factors, an F16 base (MOSTLY_F16)
    const base = await readGguf(join(typed, 'base.gguf'));
    expect(base.metadata['general.file_type']).toBe(1);
    const adapter = await readGguf(join(typed, 'adapter.gguf'));
    expect(adapter.tensorInfos.every((t) => t.dtype === 1)).toBe(true);
    expect(readFileSync(join(typed, 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/base\.gguf\nADAPTER \.\/adapter\.gguf$/m);
  }, 180_000);

  it('the seed field refuses exactly the seeds the service refuses', async () => {
    // a copy of the demo model, so the answers come from a model this test owns
    const model = join(harness.home, 'seed-model');
    cpSync(harness.demo.model, model, { recursive: true });
    for (const seed of [0, 7, MAX_SEED, MAX_SEED + 1, 1e30, -1, 1.5, Number.NaN]) {
      const pageSays = trySettingsErrors({ ...settings, layout: 'plain', system: '', seed }).seed ?? null;
      const request = { ...settings, maxNewTokens: 1, model, adapter: null, seed: Number.isNaN(seed) ? null : seed };
      const served = await harness.service.call('generate', JSON.parse(JSON.stringify(request)));
      expect(pageSays === null, `seed ${seed}: the page ${pageSays ?? 'accepts it'}, the service ${served.ok ? 'accepts it' : served.error.message}`).toBe(served.ok);
      if (pageSays) expect(pageSays).toBe(`A whole number from 0 to ${MAX_SEED}.`);
    }
  }, 120_000);

  it('the sampling fields refuse exactly what the service refuses, and take empty as the model\'s own', async () => {
    const model = join(harness.home, 'sampling-model');
    cpSync(harness.demo.model, model, { recursive: true });
    for (const key of ['temperature', 'topK', 'topP', 'minP', 'typicalP', 'epsilonCutoff', 'etaCutoff', 'repetitionPenalty'] as const) {
      for (const value of [null, 0, 1e-9, 0.5, 1, 1.5, 20, 2.5, -1]) {
        const pageSays = trySettingsErrors({ ...settings, layout: 'plain', system: '', [key]: value })[key] ?? null;
        // the request without the key (empty: left out), or with it
        const request: Record<string, unknown> = { ...settings, maxNewTokens: 1, model, adapter: null };
        delete request[key];
        if (value !== null) request[key] = value;
        const served = await harness.service.call('generate', request);
        expect(pageSays === null, `${key} ${value}: the page ${pageSays ?? 'accepts it'}, the service ${served.ok ? 'accepts it' : served.error.message}`).toBe(served.ok);
      }
    }
  }, 120_000);

  it('Try keeps what the user set when the page is left and for a run on another model; an emptied field is the model\'s own', async () => {
    // another model: the demo with sampling settings in its generation_config.json, and a run on it
    const model = join(harness.home, 'sampled-model');
    cpSync(harness.demo.model, model, { recursive: true });
    const configFile = join(model, 'generation_config.json');
    const config = { ...JSON.parse(readFileSync(configFile, 'utf8')), do_sample: true, temperature: 0.7, top_k: 20, top_p: 0.9, min_p: 0.05, typical_p: 0.9 };
    writeFileSync(configFile, JSON.stringify(config));
    const otherRun = await train('lora', join(harness.home, 'sampled-run'), undefined, {}, model);

    const studio = new Studio();
    const sampling = ['try-temperature', 'try-top-k', 'try-top-p', 'try-min-p', 'try-typical-p', 'try-epsilon-cutoff', 'try-eta-cutoff', 'try-repetition-penalty', 'try-no-repeat-ngram-size'];
    const none = "Filled in with transformers' defaults: the model's generation_config.json sets none of these.";
    /** Opens the page on `run` until its model's settings are read (the whole sentence: the wizard's model may answer first). */
    const open = async (run: string, source: string) => {
      const { root } = await render(run, studio);
      await until("the run's model's settings read", () => text(root, 'try-sampling-source').startsWith(source));
      return {
        root,
        values: () => sampling.map((id) => (byId(root, id) as HTMLInputElement).value),
        origins: () => sampling.map((id) => text(root, `${id}-origin`)),
      };
    };
    const first = await open(runDir, none);
    type(first.root, 'try-prompt', PROMPT);
    type(first.root, 'try-temperature', '0.9');
    type(first.root, 'try-top-k', '');
    // emptied, top-k is the model's own: here transformers' default, the demo's file setting none
    expect(first.values()).toEqual(['0.9', '', '1', '0', '1', '0', '0', '1', '0']);
    expect(first.origins()).toEqual(['(yours)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)']);
    // the reset button goes with the edits: the focus moves to the first sampling field, not to the page's top
    const reset = byId(first.root, 'try-sampling-reset') as HTMLButtonElement;
    reset.focus();
    reset.click();
    flushSync();
    expect(byId(first.root, 'try-sampling-reset')).toBeNull();
    expect(first.values()).toEqual(['0', '50', '1', '0', '1', '0', '0', '1', '0']);
    expect(document.activeElement).toBe(byId(first.root, 'try-temperature'));
    type(first.root, 'try-temperature', '0.9');
    type(first.root, 'try-top-k', '');

    // to Runs and back (the page is made anew): the prompt and the edits are still there
    harness.unmount();
    const again = await open(runDir, none);
    expect((byId(again.root, 'try-prompt') as HTMLTextAreaElement).value).toBe(PROMPT);
    expect(again.values()).toEqual(['0.9', '', '1', '0', '1', '0', '0', '1', '0']);
    expect(again.origins()).toEqual(['(yours)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)']);
    expect(byId(again.root, 'try-sampling-reset')).not.toBeNull();

    // another run, on the other model (chosen on Runs): its settings fill the fields not changed; the edits stay
    harness.unmount();
    const other = await open(otherRun, "Filled in from the model's generation_config.json (temperature, top-k, top-p, min-p, typical-p); the others are transformers' defaults.");
    expect((byId(other.root, 'try-prompt') as HTMLTextAreaElement).value).toBe(PROMPT);
    expect(other.values()).toEqual(['0.9', '', '0.9', '0.05', '0.9', '0', '0', '1', '0']);
    // the emptied top-k is now the file's 20: the request leaves it out, and the model's own is its file's
    expect(other.origins()).toEqual(['(yours)', "(the model's)", "(the model's)", "(the model's)", "(the model's)", '(default)', '(default)', '(default)', '(default)']);

    // the file there but broken: it is named as the one that cannot be used, not as missing
    harness.unmount();
    writeFileSync(configFile, '{"do_sample": true,');
    const unusable = "Filled in with transformers' defaults: the model's generation_config.json cannot be used for them (below).";
    const broken = await open(otherRun, unusable);
    expect(text(broken.root, 'try-sampling-source')).toBe(`${unusable} Use the model's settings again`);
    expect(text(broken.root, 'try-sampling-problems')).toMatch(new RegExp(`^${configFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON`));
    expect(broken.values()).toEqual(['0.9', '', '1', '0', '1', '0', '0', '1', '0']);
    expect(broken.origins()).toEqual(['(yours)', "(the model's own)", '(default)', '(default)', '(default)', '(default)', '(default)', '(default)', '(default)']);
  }, 240_000);
});
