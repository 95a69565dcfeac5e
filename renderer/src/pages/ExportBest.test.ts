// A run with keep-best that stopped early, on the pages that show it (jsdom,
// the real studio service, the bundled demo model): the Train page and the
// Runs page say why it stopped and where the best adapter is; the Export page
// offers "the best checkpoint (step N, eval loss X)" as a source and exports it
// (the files read back here against the run's best/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import type { ApiEvent, ApiTransport } from '../../../electron/api/contract.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-export-best-',
  allowedRoots: null,
  load: () => import('./Export.svelte'),
});
let api: ApiTransport;
const events: ApiEvent[] = [];
let runDir = '';
let record: { stop_reason: string; best_eval_step: number; best_eval_loss: number };

const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.replace(/\s+/g, ' ').trim() ?? null;
const sentence = (s: string) => `${s[0].toUpperCase()}${s.slice(1)}.`;

beforeAll(async () => {
  harness.service.onEvent((e) => events.push(e));
  api = (await import('../api/index.js')).api;
  const path = (name: string) => harness.demo.datasets.find((d) => d.name === name)!.path;
  // a learning rate that overshoots: the eval loss turns up after some 20 steps
  const started = await api.call('startRun', {
    model: harness.demo.model, data: path('task-train'), evalData: path('task-eval'), method: 'lora',
    hyper: { steps: 40, threads: 2, batchSize: 4, lr: 3e-2, evalEvery: 2, keepBest: true, earlyStop: 3 },
  });
  await until('the run', () => events.some((e) => e.type === 'run' && e.runId === started.runId && e.event.type === 'finished'), 120_000);
  runDir = started.runDir;
  record = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
  expect(record.stop_reason).toMatch(/^stopped early at step \d+: the eval loss did not improve for 3 evaluations; best /);
}, 180_000);

describe('a run that stopped early, with its best adapter', () => {
  it('the Train page says why it stopped and where the best adapter is', async () => {
    const studio = new Studio();
    studio.runDir = runDir;
    const Train = (await import('./Train.svelte')).default;
    const root = harness.mountComponent(Train as never, { studio });
    await until('the finished record', () => byId(root, 'run-stopped-early') !== null);
    expect(text(root, 'run-stopped-early')).toBe(sentence(record.stop_reason));
    expect(text(root, 'run-best')).toBe(`Best adapter (eval loss ${record.best_eval_loss.toFixed(4)} at step ${record.best_eval_step}): ${join(runDir, 'best')}. The run folder's own adapter is the last step's.`);
  });

  it('the Runs page says it in the run\'s detail', async () => {
    const Runs = (await import('./Runs.svelte')).default;
    const root = harness.mountComponent(Runs as never, { studio: new Studio() });
    const row = () => root.querySelector<HTMLElement>(`[data-testid="run-row"][data-dir="${runDir}"]`);
    await until('the row', () => row() !== null);
    row()!.querySelector<HTMLButtonElement>('[data-testid="run-select"]')!.click();
    await until('the detail', () => byId(root, 'run-detail-stopped-early') !== null);
    expect(text(root, 'run-detail-stopped-early')).toBe(sentence(record.stop_reason));
    expect(text(root, 'run-detail-best')).toBe(`Best adapter (eval loss ${record.best_eval_loss.toFixed(4)} at step ${record.best_eval_step}): ${join(runDir, 'best')}; Export & try offers it.`);
  });

  it('the Export page offers the best checkpoint as a source and exports it', async () => {
    const studio = new Studio();
    studio.runDir = runDir;
    studio.model = harness.demo.model;
    const root = harness.mount({ studio });
    await until('the source choice', () => byId(root, 'export-source') !== null);
    expect(text(root, 'export-source')).toBe(`Export the final adapter (the last step) the best checkpoint (step ${record.best_eval_step}, eval loss ${record.best_eval_loss.toFixed(4)})`);
    expect((byId(root, 'export-source-final') as HTMLInputElement).checked).toBe(true);
    (byId(root, 'export-source-best') as HTMLInputElement).click();
    await until('the best chosen', () => text(root, 'export-out') === `${runDir}-best-export`);
    await until('the export ready', () => !(byId(root, 'export-button') as HTMLButtonElement).disabled);
    (byId(root, 'export-button') as HTMLButtonElement).click();
    await until('the export', () => byId(root, 'export-result') !== null || byId(root, 'export-error') !== null, 120_000);
    expect(text(root, 'export-error')).toBeNull();
    const out = `${runDir}-best-export`;
    expect(readFileSync(join(out, 'adapter_model.safetensors'))).toEqual(readFileSync(join(runDir, 'best', 'adapter_model.safetensors')));
    // not the final adapter (the last step's differs)
    expect(readFileSync(join(out, 'adapter_model.safetensors'))).not.toEqual(readFileSync(join(runDir, 'adapter_model.safetensors')));
  }, 120_000);

  it('the try panel answers with the best adapter when asked, the same as the best adapter folder itself gives', async () => {
    const studio = new Studio();
    studio.runDir = runDir;
    studio.model = harness.demo.model;
    const root = harness.mount({ studio });
    await until('the best option', () => byId(root, 'try-use-best') !== null);
    const prompt = byId(root, 'try-prompt') as HTMLTextAreaElement;
    prompt.value = 'Question: What color is the bear?\nAnswer:';
    prompt.dispatchEvent(new Event('input', { bubbles: true }));
    (byId(root, 'try-use-best') as HTMLInputElement).click();
    await until('generate enabled', () => !(byId(root, 'generate-button') as HTMLButtonElement).disabled);
    (byId(root, 'generate-button') as HTMLButtonElement).click();
    await until('both answers', () => (byId(root, 'adapter-stats')?.textContent ?? '') !== '', 120_000);
    expect(text(root, 'try-trained-title')).toBe(`With the best adapter (step ${record.best_eval_step})`);
    // the same request straight to the service with best/ as the adapter: the same answer
    const maxNewTokens = Number((byId(root, 'try-max-tokens') as HTMLInputElement).value);
    const direct = await api.call('generate', { model: harness.demo.model, adapter: join(runDir, 'best'), prompt: prompt.value, promptFormat: 'plain', maxNewTokens, temperature: 0, seed: 0 });
    expect(text(root, 'adapter-output')).toBe(direct.text.replace(/\s+/g, ' ').trim());
  }, 180_000);
});
