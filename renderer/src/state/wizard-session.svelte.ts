// What survives a reload of the page (F5, Ctrl+R, a browser tab restored):
// the wizard's choices, kept in this tab's sessionStorage as they change,
// and the run training in the service, found again by asking the service
// (its run list, then the run's history for its live id). The Train page
// then follows that run as if the page had never gone away.
import type { ApiEvent, ApiTransport, DatasetReport, ModelOverview, RunSettings, TrainMethod } from '../../../electron/api/contract.js';
import { STEPS, type LiveRun, type Page, type Studio } from './studio.svelte.js';

export const SESSION_KEY = 'peft-studio-wizard';

/** The part of the Studio a reload must not lose. */
export interface WizardSnapshot {
  version: 1;
  page: Page;
  model: string | null;
  overview: ModelOverview | null;
  method: TrainMethod | null;
  data: string | null;
  dataFormat: RunSettings['dataFormat'];
  completionOnly: boolean;
  pack: boolean;
  dataReport: DatasetReport | null;
  hyper: RunSettings['hyper'];
  runDir: string | null;
}

export function snapshotOf(studio: Studio): WizardSnapshot {
  return $state.snapshot({
    version: 1 as const,
    page: studio.page,
    model: studio.model,
    overview: studio.overview,
    method: studio.method,
    data: studio.data,
    dataFormat: studio.dataFormat,
    completionOnly: studio.completionOnly,
    pack: studio.pack,
    dataReport: studio.dataReport,
    hyper: studio.hyper,
    runDir: studio.runDir,
  }) as WizardSnapshot;
}

const PAGES: readonly string[] = [...STEPS, 'runs'];

/** Puts a snapshot back; the page only if its step is open with these choices. */
export function applySnapshot(studio: Studio, snap: WizardSnapshot): void {
  studio.model = snap.model;
  studio.overview = snap.overview;
  studio.method = snap.method;
  studio.data = snap.data;
  studio.dataFormat = snap.dataFormat;
  studio.completionOnly = snap.completionOnly;
  studio.pack = snap.pack;
  studio.dataReport = snap.dataReport;
  studio.hyper = snap.hyper ?? {};
  // the run's live id belongs to the service's session: the Train page asks for it again
  studio.runDir = snap.runDir;
  studio.runId = null;
  if (PAGES.includes(snap.page) && studio.reachable(snap.page)) studio.page = snap.page;
}

/** The snapshot this tab saved, or null (none, or not one this version wrote). */
export function readSnapshot(storage: Pick<Storage, 'getItem'>): WizardSnapshot | null {
  try {
    const json = JSON.parse(storage.getItem(SESSION_KEY) ?? 'null') as Partial<WizardSnapshot> | null;
    return json && json.version === 1 ? (json as WizardSnapshot) : null;
  } catch {
    return null;
  }
}

export function saveSnapshot(storage: Pick<Storage, 'setItem'>, snap: WizardSnapshot): void {
  try {
    storage.setItem(SESSION_KEY, JSON.stringify(snap));
  } catch {
    // storage full (a huge data report): keep the choices, the Data step reads the file again
    try {
      storage.setItem(SESSION_KEY, JSON.stringify({ ...snap, dataReport: null, page: snap.page === 'hyperparameters' ? 'data' : snap.page }));
    } catch {
      // no storage at all: a reload starts over, as before
    }
  }
}

/**
 * The runs training in the service now, newest first: the run list's
 * running and paused runs, each confirmed by its history's live id (a
 * record says "running" also when its process died unseen).
 */
export async function findLiveRuns(api: ApiTransport): Promise<LiveRun[]> {
  const entries = (await api.call('listRuns', {}))
    .filter((e) => e.status === 'running' || e.status === 'paused')
    .sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
  const live: LiveRun[] = [];
  for (const e of entries) {
    const history = await api.call('runHistory', { runDir: e.dir }).catch(() => null);
    if (history?.runId) live.push({ runId: history.runId, runDir: e.dir, method: e.method });
  }
  return live;
}

/**
 * After a reload: learn which runs train, and open the Train page on one
 * (the run this tab followed, else the newest) so a running run is never
 * hidden behind an empty wizard.
 */
export async function reattachLiveRun(studio: Studio, api: ApiTransport): Promise<void> {
  const live = await findLiveRuns(api);
  // events heard meanwhile are newer than the list: keep runs they added
  const heard = studio.liveRuns.filter((r) => !live.some((l) => l.runDir === r.runDir));
  studio.liveRuns = [...live, ...heard];
  if (live.length === 0) return;
  const run = live.find((r) => r.runDir === studio.runDir) ?? live[0];
  studio.runDir = run.runDir;
  studio.runId = run.runId;
  studio.page = 'train';
}

/**
 * Restores this tab's wizard (now), keeps saving it as it changes, tracks
 * the live runs from the service's events, and re-attaches to a running
 * run. Call once, right after the Studio is created; returns the stop.
 */
export function keepSession(studio: Studio, api: ApiTransport, storage: Pick<Storage, 'getItem' | 'setItem'>): () => void {
  const saved = readSnapshot(storage);
  if (saved) applySnapshot(studio, saved);
  const stopSaving = $effect.root(() => {
    $effect(() => saveSnapshot(storage, snapshotOf(studio)));
  });
  const offEvents = api.onEvent((e: ApiEvent) => studio.noteRunEvent(e));
  void reattachLiveRun(studio, api).catch(() => {
    // no answer (the server is gone): the connection state says so; the wizard is restored anyway
  });
  return () => {
    stopSaving();
    offEvents();
  };
}
