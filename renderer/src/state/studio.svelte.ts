// The wizard's shared state: what the user has chosen so far, step by step.
// One instance for the whole app (created in App.svelte and handed to every
// page as the `studio` prop). Each page keeps its own transient state in its
// own class; only what later steps need, and what a page keeps across visits
// (the runs compared, what the user set in Try), lives here.
import { ApiError, type ApiErrorBody, type ApiEvent, type DataRequest, type DatasetReport, type ModelOverview, type RunCheck, type RunSettings, type TrainMethod } from '../../../electron/api/contract.js';
import { EVAL_JUDGED, evalJudgedOff } from './hyperparameter-fields.js';
import { TryInput } from './try-input.svelte.js';

export const STEPS = ['model', 'method', 'data', 'hyperparameters', 'train', 'export'] as const;

type HyperKey = keyof RunSettings['hyper'];

/**
 * The settings only some methods have, and which (the field definitions in
 * electron/service/hyperparameters.ts; studio.test.ts checks this table
 * against them). Every other setting (learning rate, steps, epochs, batch,
 * sequence length, eval split, seed, ...) means the same for every method and
 * survives a change of method.
 */
export const METHOD_SPECIFIC: Partial<Record<HyperKey, readonly TrainMethod[]>> = {
  rank: ['lora', 'qlora'],
  alpha: ['lora', 'qlora'],
  dropout: ['lora', 'qlora'],
  targets: ['lora', 'qlora'],
  rslora: ['lora', 'qlora'],
  dora: ['lora', 'qlora'],
  quantBlocksize: ['qlora'],
  doubleQuant: ['qlora'],
  virtualTokens: ['prompt', 'prefix'],
  promptInitText: ['prompt'],
  prefixProjection: ['prefix'],
};

/** The changed settings that still apply under `method`: those of other methods go. */
export function settingsFor(method: TrainMethod, hyper: RunSettings['hyper']): RunSettings['hyper'] {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(hyper)) {
    const only = METHOD_SPECIFIC[key as HyperKey];
    if (!only || only.includes(method)) kept[key] = value;
  }
  return kept as RunSettings['hyper'];
}
export type Step = (typeof STEPS)[number];
export type Page = Step | 'runs';

/** A run training now in the service this page talks to. */
export interface LiveRun {
  runId: string;
  runDir: string;
  method: TrainMethod | null;
}

/** The reading settings of a data request as a key: everything a report depends on but the file (and its role). */
export function readKeyOf(r: Omit<DataRequest, 'data' | 'role'>): string {
  return JSON.stringify([r.model, r.format ?? 'auto', r.completionOnly ?? true, r.pack ?? false, r.seqLen ?? null]);
}

export class Studio {
  /** the page on screen */
  page = $state<Page>('model');
  /** the runs picked on the Runs page to compare: they stay picked while the user visits other pages */
  comparedRuns = $state.raw<string[]>([]);

  /** step 1: the model folder and what inspectModel said of it */
  model = $state<string | null>(null);
  overview = $state<ModelOverview | null>(null);

  /** step 2 */
  method = $state<TrainMethod | null>(null);

  /** step 3: the dataset file and its report */
  data = $state<string | null>(null);
  dataFormat = $state<RunSettings['dataFormat']>('auto');
  completionOnly = $state(true);
  pack = $state(false);
  dataReport = $state<DatasetReport | null>(null);
  /**
   * optional: a separate evaluation file (a validation set) and its report;
   * while it is chosen the run evaluates on it, not on an eval split
   */
  evalData = $state<string | null>(null);
  evalReport = $state<DatasetReport | null>(null);
  /**
   * The reading settings (dataReadKey) each report was read with: a report
   * read with others no longer says what the run reads (the Sequence length
   * is set on the Hyperparameters page), so the Data page reads it again.
   */
  dataReadWith = $state<string | null>(null);
  evalReadWith = $state<string | null>(null);

  /** step 4: the settings the user changed (the rest are the method's defaults) */
  hyper = $state<RunSettings['hyper']>({});
  /** the last checkRun verdict for these settings */
  check = $state<RunCheck | null>(null);
  /** what the check before the start said the run started from it would take (RunCheck.time's words), by its folder */
  startEstimate = $state<{ runDir: string; text: string } | null>(null);
  /**
   * Method-specific settings put aside by a change of method (the LoRA rank
   * while prompt tuning is chosen), restored when a method
   * that has them is chosen again: arrowing through the methods loses nothing.
   * Never a setting of the method chosen now (those are in `hyper`). Part of
   * the tab's snapshot (wizard-session.svelte.ts), so a reload loses nothing either.
   */
  setAside = $state<RunSettings['hyper']>({});

  /** step 5: the run being trained or last trained (set by the Train page, or by Runs → resume) */
  runId = $state<string | null>(null);
  runDir = $state<string | null>(null);
  /**
   * The run that failed before it trained and left no folder (the service
   * removes a new folder the run never wrote to): what it said, for the Train
   * page; runDir is dropped, so nothing offers the folder that is gone.
   */
  failedStart = $state<{ runDir: string; message: string } | null>(null);
  /** the last failure heard of this tab's run (its 'failed' event), by folder: what failedStart says of it */
  private heardFailure: { runDir: string; message: string } | null = null;

  /**
   * step 6: what the user set in the Export page's Try panel (the prompt, its
   * settings, the sampling fields changed): kept while the user visits other
   * pages, the only places another run (and so another model) is chosen
   */
  readonly tryInput = new TryInput();

  /**
   * The runs training now (from the service's run list on load, then its run
   * events): the Train page offers to switch between them, and starting
   * another warns that they share the machine.
   */
  liveRuns = $state.raw<LiveRun[]>([]);

  /** the desktop app's File menu asked to open a picker (a new nonce per request) */
  menuPick = $state<{ target: 'model' | 'data'; nonce: number } | null>(null);

  /** the error the banner shows; any page reports a failed call with showError(e) */
  error = $state<ApiErrorBody | null>(null);

  /** The settings the data files are read with now, as a key (readKeyOf): what the reports depend on besides the file. */
  get dataReadKey(): string {
    return readKeyOf({ model: this.model ?? '', format: this.dataFormat, completionOnly: this.completionOnly, pack: this.pack, seqLen: this.hyper.seqLen });
  }

  /** The settings a run starts with. */
  get runSettings(): RunSettings | null {
    if (!this.model || !this.data || !this.method) return null;
    const hyper = $state.snapshot(this.hyper) as RunSettings['hyper'];
    // the evaluation file replaces the eval split (the Hyperparameters page shows it off meanwhile; it comes back with no file)
    if (this.evalData !== null) delete hyper.evalSplit;
    // keep-best and early stopping judge evaluations during the run: without them they are shown off, and not sent
    for (const key of EVAL_JUDGED) if (evalJudgedOff(key, hyper, this.evalData) !== null) delete hyper[key];
    return {
      model: this.model,
      data: this.data,
      ...(this.evalData !== null ? { evalData: this.evalData } : {}),
      method: this.method,
      dataFormat: this.dataFormat,
      completionOnly: this.completionOnly,
      pack: this.pack,
      hyper,
    };
  }

  /** Whether a step can be opened: each needs the choices before it. */
  reachable(step: Page): boolean {
    switch (step) {
      case 'model':
      case 'runs':
        return true;
      case 'method':
        return this.overview !== null;
      case 'data':
        return this.method !== null;
      case 'hyperparameters':
        return this.dataReport !== null;
      case 'train':
        return this.runDir !== null || (this.dataReport !== null && this.method !== null);
      case 'export':
        return this.runDir !== null;
    }
  }

  /** A new model invalidates everything chosen for the old one. */
  chooseModel(dir: string, overview: ModelOverview): void {
    this.model = dir;
    this.overview = overview;
    this.method = overview.recommended;
    this.dataReport = null;
    this.evalReport = null;
    this.hyper = {};
    this.setAside = {};
    this.check = null;
  }

  /**
   * Another method: the settings only the old one had are put aside (LoRA
   * rank, virtual tokens...), and those of the new one put aside before come
   * back; the rest the user changed (learning rate, steps, eval split...) stay.
   */
  chooseMethod(method: TrainMethod): void {
    if (method === this.method) return;
    this.method = method;
    const before = $state.snapshot(this.hyper) as RunSettings['hyper'];
    const kept = settingsFor(method, before) as Record<string, unknown>;
    const aside = $state.snapshot(this.setAside) as Record<string, unknown>;
    for (const [key, value] of Object.entries(before)) if (!(key in kept)) aside[key] = value;
    for (const [key, value] of Object.entries(settingsFor(method, aside as RunSettings['hyper']))) {
      if (METHOD_SPECIFIC[key as HyperKey] && !(key in kept)) kept[key] = value;
      delete aside[key];
    }
    this.hyper = kept as RunSettings['hyper'];
    this.setAside = aside as RunSettings['hyper'];
    this.check = null;
  }

  /**
   * The service says `runDir` holds no run, and this tab heard its run there
   * fail: the run failed before it wrote anything, and its folder was removed.
   * It stops being the run (Export offers nothing), and failedStart says what
   * it said. Returns whether it was dropped (a folder followed before its run
   * starts there holds no run either, and stays).
   */
  dropFailedRun(runDir: string): boolean {
    const heard = this.heardFailure;
    if (this.runDir !== runDir || heard?.runDir !== runDir) return false;
    this.failedStart = { runDir, message: heard.message };
    this.runDir = null;
    this.runId = null;
    this.liveRuns = this.liveRuns.filter((r) => r.runDir !== runDir);
    return true;
  }

  /** Keeps liveRuns current from one service event (any other event is ignored). */
  noteRunEvent(e: ApiEvent): void {
    if (e.type !== 'run') return;
    const { type } = e.event;
    if (e.event.type === 'failed') this.heardFailure = { runDir: e.runDir, message: e.event.message };
    const known = this.liveRuns.find((r) => r.runDir === e.runDir);
    if (type === 'finished' || type === 'cancelled' || type === 'failed') {
      if (known) this.liveRuns = this.liveRuns.filter((r) => r !== known);
      return;
    }
    const method = e.event.type === 'started' ? e.event.method : (known?.method ?? null);
    if (known && known.runId === e.runId && known.method === method) return;
    const run = { runId: e.runId, runDir: e.runDir, method };
    this.liveRuns = known ? this.liveRuns.map((r) => (r === known ? run : r)) : [...this.liveRuns, run];
  }

  /**
   * Said before a run starts while others train: they share this machine's
   * CPU (or GPU) and memory, so each goes slower. null when none trains.
   */
  get sharingWarning(): string | null {
    const others = this.liveRuns.length;
    if (others === 0) return null;
    const which = others === 1 ? 'Another run is' : `${others} other runs are`;
    return `${which} training on this machine. A new run shares the processor and memory with ${others === 1 ? 'it' : 'them'}, so each runs slower.`;
  }

  /** File → Open model folder… / Open dataset…: go to that step and open its picker. */
  openFromMenu(target: 'model' | 'data'): void {
    const step = target === 'data' && this.reachable('data') ? 'data' : 'model';
    this.page = step;
    this.menuPick = { target: step, nonce: (this.menuPick?.nonce ?? 0) + 1 };
  }

  /** Shows an error in the banner: an ApiError's body as it is, anything else as a failure. */
  showError(e: unknown): void {
    this.error = toErrorBody(e);
  }

  clearError(): void {
    this.error = null;
  }
}

export function toErrorBody(e: unknown): ApiErrorBody {
  if (e instanceof ApiError) return e.body;
  if (e instanceof Error) return { message: e.message, code: 'failed' };
  return { message: String(e), code: 'failed' };
}
