// @vitest-environment node
// The later wizard steps' state classes against the real studio service
// (electron/service, in this process) on the bundled demo model: the form
// and its live check, starting a run, following it (history + live events,
// as the Train page does), cancel and resume, the Runs page, export with its
// log and reload check, and the try panel. Every answer crosses a JSON round
// trip first, as it would over the WebSocket. The service is imported here
// only as the test's backend; the renderer's own code imports the contract alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ApiTransport, DemoPaths } from '../../../electron/api/contract.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { ExportPage } from './export-page.svelte.js';
import { HyperparametersPage } from './hyperparameters-page.svelte.js';
import { runConfigFacts } from './run-config-facts.js';
import { RunsPage } from './runs-page.svelte.js';
import { Studio } from './studio.svelte.js';
import { TrainPage } from './train-page.svelte.js';
import { TryPanel } from './try-panel.svelte.js';
import { until } from '../testing/dom-waits.js';
import { createIpcTransport } from '../api/ipc.js';
import { serviceBridge } from '../testing/service-bridge.js';
import { manyRowsFile } from '../../../electron/testing/many-rows.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-renderer-flow-'));
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let api: ApiTransport;
let demo: DemoPaths;



function demoStudio(): Studio {
  const studio = new Studio();
  studio.model = demo.model;
  studio.method = 'lora';
  studio.data = demo.datasets.find((d) => d.name === 'task-train')!.path;
  return studio;
}

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  // the app's Electron transport over the test bridge: calls and events through JSON, failures as ApiErrors
  api = createIpcTransport(serviceBridge(service, () => []));
  demo = await api.call('demoPaths', {});
});
afterAll(async () => {
  await service.close();
  rmSync(home, { recursive: true, force: true });
});

// The tests that train, export or check through the real service take seconds here and several times that on
// a busy two-core machine: each has its own timeout (vitest's default of 5 s ran out there).
describe('the wizard from hyperparameters to try', () => {
  let studio: Studio;
  let runDir = '';
  beforeAll(() => {
    studio = demoStudio();
  });

  it('Hyperparameters: the form, local and server validation, the check, start', async () => {
    const page = new HyperparametersPage(studio, api, 0);
    studio.hyper = { virtualTokens: 30 }; // left over from another method: dropped
    await page.load();
    expect(page.loadError).toBeNull();
    expect(page.basic.map((s) => s.key)).toEqual(['lr', 'epochs', 'steps', 'batchSize', 'seqLen', 'rank', 'alpha']);
    expect(page.inputs.lr).toBe('0.0002');
    expect(page.inputs.steps).toBe('');
    expect(page.inputs.targets).toBe('q_proj, v_proj');
    expect(studio.hyper).toEqual({});
    await until('the first check', () => !page.checkPending && studio.check !== null);
    expect(studio.check!.ok).toBe(true);
    expect(studio.check!.memory!.fits).toBe(true);
    expect(studio.check!.verdict).toMatch(/^Fits (in RAM|on .+): needs about /);

    // the demo model's max_position_embeddings (256) bounds the field
    page.edit('seqLen', '512');
    expect(page.errorsFor('seqLen')).toEqual(['Must be at most 256.']);
    expect(page.canStart).toBe(false);
    page.edit('seqLen', '128');
    page.edit('steps', '6');
    page.edit('threads', '1');
    page.edit('lr', '2e-4'); // the default, typed differently: not a change
    expect(page.errorsFor('seqLen')).toEqual([]);
    // the Threads default is this machine's core count: on a one-core machine (or one pinned to a core) 1 is no change
    const oneThread = availableParallelism() === 1 ? {} : { threads: 1 };
    expect(studio.hyper).toEqual({ seqLen: 128, steps: 6, ...oneThread });

    // an exclusive bound is the form's own (eval split stays below 1), said as the help says it
    page.edit('evalSplit', '1');
    expect(page.errorsFor('evalSplit')).toEqual(['Must be less than 1.']);
    expect(page.canStart).toBe(false);
    page.edit('evalSplit', '0.1');
    // a refusal only the server knows (a step no engine can hold) comes back under its field, in the form's words
    page.edit('batchSize', '1000000000');
    await until('the batch size check', () => !page.checkPending && studio.check?.ok === false);
    expect(page.errorsFor('batchSize')).toEqual([expect.stringMatching(/^Batch size 1000000000 x Sequence length 128 = .*: lower Batch size \(raise Gradient accumulation to keep the effective batch\) or Sequence length$/)]);
    expect(page.otherErrors).toEqual([]);
    expect(page.canStart).toBe(false);
    page.reset('batchSize');
    page.edit('evalEvery', '3');
    await until('the check', () => !page.checkPending && studio.check?.ok === true);
    expect(studio.check!.memory!.trainableParams).toBeGreaterThan(0);
    expect(studio.hyper).toEqual({ seqLen: 128, steps: 6, ...oneThread, evalSplit: 0.1, evalEvery: 3 });
    expect(page.canStart).toBe(true);

    await page.start();
    expect(page.startError).toBeNull();
    expect(studio.page).toBe('train');
    expect(studio.runId).not.toBeNull();
    runDir = studio.runDir!;
    expect(runDir.startsWith(join(home, 'runs'))).toBe(true);
    page.dispose();
  }, 120_000);

  it('Train: follows the run from its history and live events to the end', async () => {
    // the page opens after startRun answered: early events come from the history
    const page = new TrainPage(studio, api);
    const off = page.subscribe();
    await page.follow(studio.runId, runDir);
    await until('the end of the run', () => page.monitor.status === 'finished');
    off();
    const m = page.monitor;
    expect(m.points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(m.evals.map((e) => e.step)).toEqual([3, 6]);
    expect(m.progress).toBe(1);
    expect(m.etaSeconds).toBeNull(); // nothing left: the page says finished, not "0 s"
    expect(m.points.every((p) => Number.isFinite(p.loss) && p.lr > 0)).toBe(true);
    expect(m.log[m.log.length - 1].message).toMatch(/^finished: 6 steps, final loss \d+\.\d{4}, final eval loss \d+\.\d{4}$/);
  }, 120_000);

  it('Runs: lists the finished run, draws its history, opens it in Export', async () => {
    const page = new RunsPage(studio, api);
    await page.refresh();
    const entry = page.entries.find((e) => e.dir === runDir)!;
    expect(entry.status).toBe('finished');
    expect(entry.steps_done).toBe(6);
    await page.select(runDir);
    expect(page.monitor!.points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(page.monitor!.status).toBe('finished');
    expect(page.history!.config.seqLen).toBe(128);
    const facts = runConfigFacts(page.history!.config);
    expect(facts.find((f) => f.label === 'Length')!.value).toBe('6 steps');
    expect(facts.find((f) => f.label === 'Evaluation')!.value).toBe('10% held out, every 3 steps');
    expect(facts.find((f) => f.label === 'LoRA')!.value).toBe('rank 8, alpha 16, dropout 0, on q_proj, v_proj');
    studio.model = null;
    page.openInExport(entry);
    expect(studio.page).toBe('export');
    expect(studio.model).toBe(demo.model);
    expect(studio.runDir).toBe(runDir);
  });

  it('Export: PEFT files, the log, a passed reload check; then base vs adapter', async () => {
    const page = new ExportPage(studio, api);
    const off = page.subscribe();
    await page.followRun(runDir);
    expect(page.out).toBe(`${runDir}-export`);
    expect(page.runMethod).toBe('lora');
    expect(page.chosen).toEqual(['peft']);
    await page.run();
    off();
    expect(page.error).toBeNull();
    const peft = page.result!.outputs.find((o) => o.format === 'peft')!;
    expect(peft.files).toContain('adapter_model.safetensors');
    expect(peft.files).toContain('adapter_config.json');
    expect(page.result!.check.checks.every((c) => c.passed)).toBe(true);
    expect(page.log.length).toBeGreaterThan(0);

    // the next export is offered a fresh folder; the first one, now full, is refused with the service's message
    expect(page.out).toBe(`${runDir}-export-2`);
    page.out = `${runDir}-export`;
    await page.run();
    expect(page.error).toMatch(/export/);

    const trial = new TryPanel(api);
    trial.input.prompt = 'The movie was great. Sentiment:';
    trial.input.maxNewTokens = 6;
    await trial.generate(page.model, runDir);
    expect(trial.error).toBeNull();
    expect(trial.base!.tokens).toBeGreaterThan(0);
    expect(trial.base!.tokens).toBeLessThanOrEqual(6);
    expect(trial.adapter!.tokens).toBeLessThanOrEqual(6);
    expect(typeof trial.adapter!.text).toBe('string');
  }, 120_000);
});

describe('a run the estimate says will not fit', () => {
  it('blocks start until the user accepts the risk, and only for memory', async () => {
    const studio = demoStudio();
    studio.data = await manyRowsFile(799); // 30000 rows of 256 tokens: a batch holds no more rows than the data has
    const page = new HyperparametersPage(studio, api, 0);
    await page.load();
    page.edit('batchSize', '30000'); // within one step's token limit (16,777,216), far over any RAM
    await until('the memory verdict', () => !page.checkPending && studio.check?.memory?.fits === false);
    expect(studio.check!.ok).toBe(false);
    expect(studio.check!.errors).toEqual([]);
    // with the settings that would fit: the largest batch first
    expect(studio.check!.verdict).toMatch(/^Does not fit (in RAM|on .+): needs about .* available\. These fit: batch size \d+, gradient accumulation \d+ /);
    expect(studio.check!.alternatives[0].hyper.batchSize).toBeLessThan(30000);
    expect(page.memoryIsTheOnlyProblem).toBe(true);
    expect(page.canStart).toBe(false);
    page.ignoreMemory = true;
    expect(page.canStart).toBe(true);
    // another problem as well: accepting the memory risk no longer suffices
    // (a step no engine can hold: a refusal the server makes, the form's own limits let it through)
    page.edit('batchSize', '1000000000');
    await until('the batch size verdict', () => !page.checkPending && (studio.check?.errors.length ?? 0) > 0);
    expect(page.memoryIsTheOnlyProblem).toBe(false);
    expect(page.canStart).toBe(false);
    page.dispose();
  }, 120_000);
});

describe('cancel and resume from the Train page', () => {
  it('cancels a run, resumes it in the same folder, and charts each step once', async () => {
    // The cancel must land before the run's last step. A demo step takes ~5 ms: with 30 steps, and the page's
    // 100 ms flush before it saw step 1, it stopped at step ~20 of 30 here, so a test process held up some
    // 50 ms let the run finish and the test wait out its timeout. Now the page takes events at once and the
    // run is long enough that a hold-up of several hundred ms still cancels it; the resume trains the rest.
    const STEPS = 100;
    const studio = demoStudio();
    studio.hyper = { seqLen: 128, steps: STEPS, threads: 1, saveEvery: 5 };
    const started = await api.call('startRun', studio.runSettings!);
    studio.runId = started.runId;
    studio.runDir = started.runDir;
    const page = new TrainPage(studio, api, (flush) => void setTimeout(flush, 0));
    const off = page.subscribe();
    await page.follow(started.runId, started.runDir);
    await until('a first step', () => page.monitor.step >= 1);
    await page.cancel();
    await until('the cancel', () => page.monitor.status === 'cancelled');
    const stoppedAt = page.monitor.step;
    expect(stoppedAt).toBeLessThan(STEPS);
    expect(page.monitor.canResumeRun).toBe(true);
    expect(page.monitor.message).toBe(`Cancelled after step ${stoppedAt} of ${STEPS}; a checkpoint at step ${stoppedAt} was saved — Resume continues from it.`);

    await page.resume();
    expect(studio.runId).not.toBe(started.runId);
    expect(studio.runDir).toBe(started.runDir);
    await page.follow(studio.runId, studio.runDir!); // what the page's effect does on the new id
    // until the new session's 'started', this page is starting, with no second resume offered
    expect(page.monitor.status).toBe('waiting');
    expect(page.monitor.canResumeRun).toBe(false);
    // a page opened now (Runs → Resume opens the Train page afresh): the folder's
    // run.json may still say cancelled, but a session runs there
    const opened = new TrainPage(studio, api);
    await opened.follow(studio.runId, studio.runDir!);
    expect(opened.monitor.status).not.toBe('cancelled');
    expect(opened.monitor.canResumeRun).toBe(false);
    await until('the resumed run to finish', () => page.monitor.status === 'finished');
    off();
    expect(page.monitor.points.map((p) => p.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(page.monitor.progress).toBe(1);
    expect(page.monitor.log.some((l) => new RegExp(`^resumed from the checkpoint at step \\d+ of ${STEPS}`).test(l.message))).toBe(true);
  }, 120_000);
});
