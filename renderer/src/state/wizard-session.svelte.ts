// What survives a reload of the page (F5, Ctrl+R, a browser tab restored):
// the wizard's choices, kept in this tab's sessionStorage as they change,
// and the run training in the service, found again by asking the service
// (its run list, then the run's history for its live id). The Train page
// then follows that run as if the page had never gone away.
import type { ApiEvent, ApiTransport, RunSettings, TrainMethod } from '../../../electron/api/contract.js';
import { METHOD_SPECIFIC, readKeyOf, STEPS, type LiveRun, type Page, type Studio } from './studio.svelte.js';

export const SESSION_KEY = 'peft-studio-wizard';

/**
 * The part of the Studio a reload must not lose: the user's choices only.
 * What the service said of them (the model overview, the data report) is
 * asked again on restore, so a snapshot never holds an answer of another
 * app version, and a model folder or data file that is gone is said so.
 */
export interface WizardSnapshot {
  version: 2;
  page: Page;
  model: string | null;
  method: TrainMethod | null;
  data: string | null;
  dataFormat: RunSettings['dataFormat'];
  completionOnly: boolean;
  pack: boolean;
  hyper: RunSettings['hyper'];
  /**
   * the other methods' own settings, put aside while this method is chosen
   * (Studio.setAside); absent from snapshots written before it was kept
   * (the version stays 2: those still restore, with nothing set aside)
   */
  setAside?: RunSettings['hyper'];
  /** the evaluation file (Studio.evalData); absent from snapshots written before it was kept: none */
  evalData?: string | null;
  runDir: string | null;
  /** the run that failed before it trained and left no folder (Studio.failedStart); absent from older snapshots: none */
  failedStart?: { runDir: string; message: string } | null;
  /** what the check before the start said the run would take (Studio.startEstimate); absent from older snapshots: none */
  startEstimate?: { runDir: string; text: string } | null;
}

export function snapshotOf(studio: Studio): WizardSnapshot {
  return $state.snapshot({
    version: 2 as const,
    page: studio.page,
    model: studio.overview ? studio.model : null,
    method: studio.method,
    data: studio.dataReport ? studio.data : null,
    dataFormat: studio.dataFormat,
    completionOnly: studio.completionOnly,
    pack: studio.pack,
    hyper: studio.hyper,
    setAside: studio.setAside,
    evalData: studio.evalReport ? studio.evalData : null,
    runDir: studio.runDir,
    failedStart: studio.failedStart,
    startEstimate: studio.startEstimate,
  }) as WizardSnapshot;
}

const PAGES: readonly string[] = [...STEPS, 'runs'];
const METHODS: readonly string[] = ['lora', 'qlora', 'full', 'prompt', 'prefix'];
const FORMATS: readonly string[] = ['auto', 'alpaca', 'chat', 'completion', 'text', 'tokenized'];

const stringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isBoolean = (v: unknown) => typeof v === 'boolean';

/**
 * The value each method-specific setting may have in a set-aside stash (the
 * keys of METHOD_SPECIFIC; wizard-session.test.ts holds the two together). Its
 * limits are not checked here: the Hyperparameters page and the run check
 * judge a restored value as they judge a typed one.
 */
export const SET_ASIDE_VALUE: Record<string, (v: unknown) => boolean> = {
  rank: isNumber,
  alpha: isNumber,
  dropout: isNumber,
  targets: (v) => Array.isArray(v) && v.every((t) => typeof t === 'string'),
  rslora: isBoolean,
  dora: isBoolean,
  quantBlocksize: isNumber,
  doubleQuant: isBoolean,
  virtualTokens: isNumber,
  promptInitText: stringOrNull,
  prefixProjection: isBoolean,
};

/**
 * A snapshot's set-aside settings as they can be put back: only settings some
 * other method than `method` has (a stash never holds the chosen method's
 * own: those are in hyper), each with a value of its kind. Anything else (a
 * stash tampered with, or of an older app) is dropped, not the snapshot:
 * the worst it costs is a setting back at its default.
 */
function setAsideOf(stash: unknown, method: TrainMethod | null): RunSettings['hyper'] {
  if (method === null || typeof stash !== 'object' || stash === null || Array.isArray(stash)) return {};
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(stash)) {
    // own keys only: a "constructor" or "__proto__" in the stash names no setting
    if (!Object.hasOwn(METHOD_SPECIFIC, key) || !Object.hasOwn(SET_ASIDE_VALUE, key)) continue;
    const only = METHOD_SPECIFIC[key as keyof RunSettings['hyper']]!;
    if (!only.includes(method) && SET_ASIDE_VALUE[key](value)) kept[key] = value;
  }
  return kept as RunSettings['hyper'];
}

/** { runDir, [text]: string }: failedStart's and startEstimate's shape */
const isRunText = (v: unknown, text: string): boolean =>
  typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).runDir === 'string' && typeof (v as Record<string, unknown>)[text] === 'string';

/** The snapshot this tab saved, or null (none, one of another version, or one whose fields are not what this version writes). */
export function readSnapshot(storage: Pick<Storage, 'getItem'>): WizardSnapshot | null {
  let json: Record<string, unknown> | null;
  try {
    json = JSON.parse(storage.getItem(SESSION_KEY) ?? 'null') as Record<string, unknown> | null;
  } catch {
    return null;
  }
  if (!json || typeof json !== 'object' || json.version !== 2) return null;
  const ok = typeof json.page === 'string' && PAGES.includes(json.page) && stringOrNull(json.model) && stringOrNull(json.data) && stringOrNull(json.runDir) &&
    (json.method === null || (typeof json.method === 'string' && METHODS.includes(json.method))) &&
    typeof json.dataFormat === 'string' && FORMATS.includes(json.dataFormat) && typeof json.completionOnly === 'boolean' && typeof json.pack === 'boolean' &&
    typeof json.hyper === 'object' && json.hyper !== null && !Array.isArray(json.hyper) && (!('evalData' in json) || stringOrNull(json.evalData)) &&
    (!('failedStart' in json) || json.failedStart === null || isRunText(json.failedStart, 'message')) &&
    (!('startEstimate' in json) || json.startEstimate === null || isRunText(json.startEstimate, 'text'));
  if (!ok) return null;
  const snap = json as unknown as WizardSnapshot;
  return 'setAside' in json ? { ...snap, setAside: setAsideOf(json.setAside, snap.method) } : snap;
}

/**
 * Puts a snapshot back: the run folder and the page at once when the page
 * needs only the run (Train, Export, Runs), then the model and the dataset
 * as the service reads them again (a folder or file that is gone is shown
 * as the error it is, and the wizard stops there). The page the user was on
 * is restored only if they have not moved meanwhile and its step is open.
 */
export async function restoreSnapshot(studio: Studio, api: ApiTransport, snap: WizardSnapshot): Promise<void> {
  const untouched = () => studio.page === 'model' || studio.page === snap.page;
  studio.runDir = snap.runDir;
  studio.failedStart = snap.failedStart ?? null;
  studio.startEstimate = snap.startEstimate ?? null;
  studio.runId = null; // the run's live id belongs to the service's session: the Train page asks for it again
  studio.dataFormat = snap.dataFormat;
  studio.completionOnly = snap.completionOnly;
  studio.pack = snap.pack;
  if (studio.page === 'model' && studio.reachable(snap.page)) studio.page = snap.page;
  if (snap.model === null) return;
  try {
    const overview = await api.call('inspectModel', { model: snap.model });
    studio.model = snap.model;
    studio.overview = overview;
    studio.method = snap.method;
    studio.hyper = snap.hyper;
    studio.setAside = snap.setAside ?? {};
    if (snap.data !== null && snap.method !== null) {
      const seqLen = typeof snap.hyper.seqLen === 'number' ? { seqLen: snap.hyper.seqLen } : {};
      const read = { model: snap.model, format: snap.dataFormat, completionOnly: snap.completionOnly, pack: snap.pack, ...seqLen };
      studio.dataReport = await api.call('inspectData', { ...read, data: snap.data });
      studio.data = snap.data;
      studio.dataReadWith = readKeyOf(read);
      if (snap.evalData) {
        studio.evalReport = await api.call('inspectData', { ...read, data: snap.evalData, role: 'eval' });
        studio.evalData = snap.evalData;
        studio.evalReadWith = readKeyOf(read);
      }
    }
  } catch (e) {
    studio.showError(e);
  }
  if (untouched() && studio.reachable(snap.page)) studio.page = snap.page;
}

export function saveSnapshot(storage: Pick<Storage, 'setItem'>, snap: WizardSnapshot): void {
  try {
    storage.setItem(SESSION_KEY, JSON.stringify(snap));
  } catch {
    // no storage (full, or switched off): a reload starts over, as before
  }
}

/**
 * The runs training in the service now, newest first: the run list's
 * entries with a live id (the service's own runs; a record that says
 * "running" after its process died unseen has none).
 */
export async function findLiveRuns(api: ApiTransport): Promise<LiveRun[]> {
  return (await api.call('listRuns', {}))
    .filter((e) => e.runId !== null)
    .sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0))
    .map((e) => ({ runId: e.runId!, runDir: e.dir, method: e.method }));
}

/**
 * After a reload: learn which runs train (the Train page offers to follow
 * them). The run this tab followed is found again (its live id); with no
 * run of its own, a new tab opens the Train page on the newest live run, so
 * a running run is never hidden behind an empty wizard. Nothing is changed
 * if the user moved on while the service answered.
 */
export async function reattachLiveRun(studio: Studio, api: ApiTransport, restored: WizardSnapshot | null): Promise<void> {
  const page = studio.page;
  const runDir = studio.runDir;
  const live = await findLiveRuns(api);
  // events heard meanwhile are newer than the list: keep runs they added
  const heard = studio.liveRuns.filter((r) => !live.some((l) => l.runDir === r.runDir));
  studio.liveRuns = [...live, ...heard];
  if (studio.page !== page || studio.runDir !== runDir) return;
  const own = runDir === null ? undefined : live.find((r) => r.runDir === runDir);
  if (own) {
    studio.runId = own.runId;
    if (restored === null) studio.page = 'train';
    return;
  }
  // this tab's own run (finished, or gone) stays its run: another tab's live one is only offered
  if (runDir !== null || restored !== null || live.length === 0) return;
  studio.runDir = live[0].runDir;
  studio.runId = live[0].runId;
  studio.page = 'train';
}

/**
 * Restores this tab's wizard, keeps saving it as it changes (from the moment
 * it is restored: a reload during the restore keeps the old snapshot),
 * tracks the live runs from the service's events, and re-attaches to a
 * running run. Call once, right after the Studio is created; returns the stop.
 */
export function keepSession(studio: Studio, api: ApiTransport, storage: Pick<Storage, 'getItem' | 'setItem'>): () => void {
  const saved = readSnapshot(storage);
  let stopped = false;
  let stopSaving = () => {};
  const offEvents = api.onEvent((e: ApiEvent) => studio.noteRunEvent(e));
  void (async () => {
    if (saved) await restoreSnapshot(studio, api, saved);
    if (stopped) return;
    stopSaving = $effect.root(() => {
      $effect(() => saveSnapshot(storage, snapshotOf(studio)));
    });
    await reattachLiveRun(studio, api, saved);
  })().catch(() => {
    // no answer (the server is gone): the connection state says so
  });
  return () => {
    stopped = true;
    stopSaving();
    offEvents();
  };
}
