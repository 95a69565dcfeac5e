// A reload in the middle of a run, against the real studio service on the
// bundled demo model: the new page restores the wizard from this tab's
// storage, finds the running run by asking the service, opens the Train page
// on it, and its monitor shows the steps the run already did. The settings a
// change of method put aside (the LoRA rank while prompt tuning is chosen)
// survive the reload too; a stash tampered with costs only itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushSync } from 'svelte';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ApiTransport, DemoPaths } from '../../../electron/api/contract.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { METHOD_SPECIFIC, Studio } from './studio.svelte.js';
import { TrainPage } from './train-page.svelte.js';
import { HyperparametersPage } from './hyperparameters-page.svelte.js';
import { keepSession, readSnapshot, SESSION_KEY, SET_ASIDE_VALUE } from './wizard-session.svelte.js';
import { until } from '../testing/dom-waits.js';
import { createIpcTransport } from '../api/ipc.js';
import { serviceBridge } from '../testing/service-bridge.js';

const home = mkdtempSync(join(tmpdir(), 'peft-studio-wizard-session-'));
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let api: ApiTransport;
let demo: DemoPaths;


/** sessionStorage as a tab has it */
function tabStorage(): Pick<Storage, 'getItem' | 'setItem'> & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return { items, getItem: (k) => items.get(k) ?? null, setItem: (k, v) => void items.set(k, v) };
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

describe('a reload while a run trains', () => {
  it('restores the wizard, finds the live run and follows it on the Train page', async () => {
    const storage = tabStorage();
    // the first page: the wizard filled in, a run started
    const before = new Studio();
    const stopBefore = keepSession(before, api, storage);
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    const overview = await api.call('inspectModel', { model: demo.model });
    before.chooseModel(demo.model, overview);
    before.data = data;
    before.dataReport = await api.call('inspectData', { model: demo.model, data, format: 'auto', completionOnly: true, pack: false });
    before.hyper = { steps: 100_000, threads: 1, lr: 1e-3 };
    // its first step, heard: the reload below must find a step in its record (the started event alone
    // put it in the run list; the step came ~10 ms later here, and later than the reload on a busy machine)
    let runId = '';
    let stepped = false;
    const offSteps = api.onEvent((e) => void (e.type === 'run' && e.runId === runId && e.event.type === 'step' && (stepped = true)));
    const started = await api.call('startRun', before.runSettings!);
    runId = started.runId;
    before.runDir = started.runDir;
    before.runId = started.runId;
    before.page = 'train';
    flushSync();
    await until('the first steps', () => before.liveRuns.length === 1 && stepped);
    offSteps();
    expect(before.liveRuns[0]).toEqual({ runId: started.runId, runDir: started.runDir, method: 'lora' });
    expect(readSnapshot(storage)?.hyper).toEqual({ steps: 100_000, threads: 1, lr: 1e-3 });
    stopBefore();

    // the reload: a new Studio, the same tab storage, the same service
    const after = new Studio();
    const stop = keepSession(after, api, storage);
    // the run's page at once; the model and the dataset as the service reads them again
    expect(after.page).toBe('train');
    expect(after.runDir).toBe(started.runDir);
    await until('the wizard read again', () => after.dataReport !== null);
    expect(after.model).toBe(demo.model);
    expect(after.method).toBe('lora');
    expect(after.data).toBe(data);
    expect(after.hyper).toEqual({ steps: 100_000, threads: 1, lr: 1e-3 });
    expect(after.reachable('hyperparameters')).toBe(true);
    await until('the live run found', () => after.runId !== null);
    expect(after.page).toBe('train');
    expect(after.runDir).toBe(started.runDir);
    expect(after.runId).toBe(started.runId);

    // the Train page follows it: the steps done before the reload, then live ones
    const train = new TrainPage(after, api, (flush) => void setTimeout(flush, 0));
    const off = train.subscribe();
    await train.follow(after.runId, after.runDir!);
    expect(train.monitor.status).toBe('running');
    const seen = train.monitor.points.length;
    expect(seen).toBeGreaterThan(0);
    await until('live steps after the history', () => train.monitor.points.length > seen + 3);
    expect(train.monitor.log.some((l) => /before this page opened/.test(l.message))).toBe(true);

    await train.cancel();
    await until('cancelled', () => train.monitor.status === 'cancelled');
    await until('the run list forgets it', () => after.liveRuns.length === 0);
    off();
    stop();
  }, 60_000);

  it('in a new tab (no saved wizard) still opens the Train page on the running run', async () => {
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    let stepped = false;
    const offSteps = api.onEvent((e) => void (e.type === 'run' && e.event.type === 'step' && (stepped = true)));
    const started = await api.call('startRun', { model: demo.model, data, method: 'lora', hyper: { steps: 100_000, threads: 1 } });
    await until('its first step', () => stepped);
    offSteps();
    const studio = new Studio();
    const storage = tabStorage();
    const stop = keepSession(studio, api, storage);
    expect(studio.model).toBeNull();
    await until('the live run found', () => studio.runId !== null);
    expect(studio.page).toBe('train');
    expect(studio.runDir).toBe(started.runDir);
    expect(studio.reachable('train')).toBe(true);
    await api.call('cancelRun', { runId: started.runId });
    await until('the run ended', () => studio.liveRuns.length === 0);
    stop();
    expect(JSON.parse(storage.items.get(SESSION_KEY)!).runDir).toBe(started.runDir);
  }, 60_000);

  it('ignores a snapshot it cannot read, of another version, or with fields it does not write; a page whose step is not open', () => {
    const storage = tabStorage();
    const quiet: ApiTransport = { call: () => new Promise(() => {}), onEvent: () => () => {} };
    const good = { version: 2, page: 'export', model: '/m', method: 'lora', data: null, dataFormat: 'auto', completionOnly: true, pack: false, hyper: {}, runDir: null };
    for (const bad of ['{not json', JSON.stringify({ ...good, version: 1 }), JSON.stringify({ ...good, method: 'dora' }), JSON.stringify({ ...good, hyper: [] }), JSON.stringify({ ...good, page: 'nowhere' })]) {
      storage.setItem(SESSION_KEY, bad);
      expect(readSnapshot(storage), bad).toBeNull();
    }
    storage.setItem(SESSION_KEY, JSON.stringify(good));
    expect(readSnapshot(storage)).toEqual(good);
    const again = new Studio();
    keepSession(again, quiet, storage)();
    expect(again.page).toBe('model'); // Export needs a run; the model is only taken once the service has read it again
    expect(again.model).toBeNull();
  });

  it('a model folder that is gone since: its error is shown, the wizard stays on the Model page', async () => {
    const storage = tabStorage();
    storage.setItem(SESSION_KEY, JSON.stringify({ version: 2, page: 'data', model: join(home, 'no-such-model'), method: 'lora', data: null, dataFormat: 'auto', completionOnly: true, pack: false, hyper: {}, runDir: null }));
    const studio = new Studio();
    const stop = keepSession(studio, api, storage);
    await until('the error', () => studio.error !== null);
    expect(studio.error!.message).toContain('no-such-model');
    expect(studio.model).toBeNull();
    expect(studio.page).toBe('model');
    stop();
  });

  it('a reload does not take another tab\'s live run over this tab\'s own finished one', async () => {
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    let stepped = false;
    const offSteps = api.onEvent((e) => void (e.type === 'run' && e.event.type === 'step' && (stepped = true)));
    const other = await api.call('startRun', { model: demo.model, data, method: 'lora', hyper: { steps: 100_000, threads: 1 } });
    await until('its first step', () => stepped);
    offSteps();
    const storage = tabStorage();
    const mine = join(home, 'runs', 'mine-finished');
    storage.setItem(SESSION_KEY, JSON.stringify({ version: 2, page: 'export', model: null, method: null, data: null, dataFormat: 'auto', completionOnly: true, pack: false, hyper: {}, runDir: mine }));
    const studio = new Studio();
    const stop = keepSession(studio, api, storage);
    // known from the service's run list (its entries name the method; one heard from a step event alone does not):
    // the re-attach has decided by then, so what follows is its decision, not the state before it
    await until('the live runs read', () => studio.liveRuns.some((r) => r.runId === other.runId && r.method === 'lora'));
    expect(studio.runDir).toBe(mine);
    expect(studio.page).toBe('export');
    await api.call('cancelRun', { runId: other.runId });
    await until('the run ended', () => studio.liveRuns.length === 0);
    stop();
  }, 60_000);
});

describe('a reload keeps the settings a change of method put aside', () => {
  it('LoRA rank 24 typed, prompt tuning chosen, a reload, LoRA again: rank 24', async () => {
    const storage = tabStorage();
    const before = new Studio();
    const stopBefore = keepSession(before, api, storage);
    before.chooseModel(demo.model, await api.call('inspectModel', { model: demo.model }));
    before.chooseMethod('lora');
    before.page = 'method';
    // typed on the Hyperparameters page, as the user types it
    const form = new HyperparametersPage(before, api, 0);
    await form.load();
    form.edit('rank', '24');
    expect(form.fieldErrors).toEqual({});
    form.dispose();
    expect(before.hyper).toEqual({ rank: 24 });
    before.chooseMethod('prompt');
    expect(before.hyper).toEqual({});
    flushSync();
    expect(readSnapshot(storage)).toMatchObject({ method: 'prompt', hyper: {}, setAside: { rank: 24 } });
    stopBefore();

    // the reload: a new Studio from the same tab storage
    const after = new Studio();
    const stop = keepSession(after, api, storage);
    await until('the model read again', () => after.overview !== null);
    expect(after.method).toBe('prompt');
    expect(after.hyper).toEqual({});
    after.chooseMethod('lora');
    expect(after.hyper).toEqual({ rank: 24 });
    // and the form shows it
    const again = new HyperparametersPage(after, api, 0);
    await again.load();
    expect(again.inputs.rank).toBe('24');
    again.dispose();
    stop();
  }, 60_000);

  it('DoRA on survives a reload (the form shows it, the run settings carry it); set aside under prompt tuning, back with LoRA', async () => {
    const storage = tabStorage();
    const first = new Studio();
    const stopFirst = keepSession(first, api, storage);
    first.chooseModel(demo.model, await api.call('inspectModel', { model: demo.model }));
    first.chooseMethod('lora');
    first.page = 'method';
    // switched on on the Hyperparameters page, as the user does
    const form = new HyperparametersPage(first, api, 0);
    await form.load();
    form.edit('dora', true);
    form.dispose();
    expect(first.hyper).toEqual({ dora: true });
    flushSync();
    expect(readSnapshot(storage)).toMatchObject({ method: 'lora', hyper: { dora: true } });
    stopFirst();

    const second = new Studio();
    const stopSecond = keepSession(second, api, storage);
    await until('the model read again', () => second.overview !== null);
    expect(second.method).toBe('lora');
    expect(second.hyper).toEqual({ dora: true });
    const shown = new HyperparametersPage(second, api, 0);
    await shown.load();
    expect(shown.inputs.dora).toBe(true);
    shown.dispose();
    second.data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    expect(second.runSettings!.hyper).toEqual({ dora: true });
    // prompt tuning has no DoRA: put aside, and kept in the snapshot
    second.chooseMethod('prompt');
    expect(second.hyper).toEqual({});
    flushSync();
    expect(readSnapshot(storage)).toMatchObject({ method: 'prompt', hyper: {}, setAside: { dora: true } });
    stopSecond();

    const third = new Studio();
    const stopThird = keepSession(third, api, storage);
    await until('the model read again', () => third.overview !== null);
    expect(third.setAside).toEqual({ dora: true });
    third.chooseMethod('qlora'); // QLoRA is LoRA on a 4-bit base: DoRA applies
    expect(third.hyper).toEqual({ dora: true });
    stopThird();

    // a stash whose dora is not a switch loses only that entry
    storage.setItem(SESSION_KEY, JSON.stringify({ ...readSnapshot(storage), method: 'prompt', hyper: {}, setAside: { dora: 'yes', rslora: true } }));
    expect(readSnapshot(storage)!.setAside).toEqual({ rslora: true });
  }, 60_000);

  it('NEFTune\'s alpha survives a reload, and a change of method keeps it (every method has it)', async () => {
    const storage = tabStorage();
    const first = new Studio();
    const stopFirst = keepSession(first, api, storage);
    first.chooseModel(demo.model, await api.call('inspectModel', { model: demo.model }));
    first.chooseMethod('lora');
    first.page = 'method';
    const form = new HyperparametersPage(first, api, 0);
    await form.load();
    form.edit('neftuneAlpha', '5');
    form.dispose();
    expect(first.hyper).toEqual({ neftuneAlpha: 5 });
    flushSync();
    expect(readSnapshot(storage)).toMatchObject({ method: 'lora', hyper: { neftuneAlpha: 5 } });
    // no method's own setting: prompt tuning keeps it in hyper, nothing set aside
    first.chooseMethod('prompt');
    expect(first.hyper).toEqual({ neftuneAlpha: 5 });
    flushSync();
    expect(readSnapshot(storage)).toMatchObject({ method: 'prompt', hyper: { neftuneAlpha: 5 } });
    expect(readSnapshot(storage)!.setAside).toEqual({});
    stopFirst();

    const second = new Studio();
    const stopSecond = keepSession(second, api, storage);
    await until('the model read again', () => second.overview !== null);
    expect(second.method).toBe('prompt');
    expect(second.hyper).toEqual({ neftuneAlpha: 5 });
    const shown = new HyperparametersPage(second, api, 0);
    await shown.load();
    expect(shown.inputs.neftuneAlpha).toBe('5');
    shown.dispose();
    second.data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    expect(second.runSettings!.hyper).toEqual({ neftuneAlpha: 5 });
    stopSecond();
  }, 60_000);

  it('an old v2 snapshot (nothing set aside) restores; a stash tampered with or stale loses only its bad part', async () => {
    const base = { version: 2, page: 'method', model: demo.model, method: 'prompt', data: null, dataFormat: 'auto', completionOnly: true, pack: false, hyper: { virtualTokens: 8 }, runDir: null };
    const restored = async (snapshot: Record<string, unknown>): Promise<Studio> => {
      const storage = tabStorage();
      storage.setItem(SESSION_KEY, JSON.stringify(snapshot));
      const studio = new Studio();
      const stop = keepSession(studio, api, storage);
      await until('the model read again', () => studio.overview !== null);
      stop();
      expect(studio.method).toBe('prompt');
      expect(studio.hyper).toEqual({ virtualTokens: 8 });
      expect(studio.page).toBe('method');
      return studio;
    };
    // written before the stash was kept
    const old = await restored(base);
    expect(old.setAside).toEqual({});
    old.chooseMethod('lora');
    expect(old.hyper).toEqual({});

    // names that are no setting but every object has
    expect((await restored(JSON.parse(JSON.stringify(base).replace(/}$/, ',"setAside":{"constructor":1,"__proto__":{"rank":3},"toString":true,"rank":16}}')))).setAside).toEqual({ rank: 16 });
    // not an object at all: nothing set aside, the rest of the snapshot as it was
    for (const junk of [[1, 2], 'rank', null, 7]) expect((await restored({ ...base, setAside: junk })).setAside, JSON.stringify(junk)).toEqual({});
    // entry by entry: a value of the wrong kind, a setting every method has (never set aside), one of prompt tuning
    // itself (it is in hyper while prompt tuning is chosen), one this version does not know: dropped; the good ones kept
    const mixed = await restored({
      ...base,
      setAside: { rank: '24', alpha: 48, targets: ['q_proj', 3], dropout: 0.1, lr: 0.5, promptInitText: 'stale', virtualTokens: 99, loraPlus: 2, prefixProjection: true },
    });
    expect(mixed.setAside).toEqual({ alpha: 48, dropout: 0.1, prefixProjection: true });
    mixed.chooseMethod('lora');
    expect(mixed.hyper).toEqual({ alpha: 48, dropout: 0.1 });
    mixed.chooseMethod('prefix');
    expect(mixed.hyper).toEqual({ virtualTokens: 8, prefixProjection: true });
  }, 60_000);

  it('keeps the evaluation file over a reload (read again by the service); a snapshot whose evalData is not a path is not read', async () => {
    const storage = tabStorage();
    const before = new Studio();
    const stopBefore = keepSession(before, api, storage);
    const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
    const evalFile = demo.datasets.find((d) => d.name === 'task-eval')!.path;
    before.chooseModel(demo.model, await api.call('inspectModel', { model: demo.model }));
    before.data = data;
    before.dataReport = await api.call('inspectData', { model: demo.model, data, format: 'auto', completionOnly: true, pack: false });
    before.evalData = evalFile;
    before.evalReport = await api.call('inspectData', { model: demo.model, data: evalFile, format: 'auto', completionOnly: true, pack: false });
    before.page = 'hyperparameters';
    await until('the snapshot with the file', () => readSnapshot(storage)?.evalData === evalFile);
    stopBefore();

    const after = new Studio();
    const stop = keepSession(after, api, storage);
    await until('the evaluation file read again', () => after.evalReport !== null);
    stop();
    expect(after.evalData).toBe(evalFile);
    expect(after.evalReport).toEqual(before.evalReport);
    expect(after.runSettings!.evalData).toBe(evalFile);

    storage.setItem(SESSION_KEY, JSON.stringify({ ...readSnapshot(storage), evalData: 7 }));
    expect(readSnapshot(storage)).toBeNull();
  }, 60_000);

  it('checks a value for every setting some methods only have, and for no other', () => {
    expect(Object.keys(SET_ASIDE_VALUE).sort()).toEqual(Object.keys(METHOD_SPECIFIC).sort());
  });
});
