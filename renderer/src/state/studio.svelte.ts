// The wizard's shared state: what the user has chosen so far, step by step.
// One instance for the whole app (created in App.svelte and handed to every
// page as the `studio` prop). Each page keeps its own transient state in its
// own class; only what later steps need lives here.
import { ApiError, type ApiErrorBody, type DatasetReport, type ModelOverview, type RunCheck, type RunSettings, type TrainMethod } from '../../../electron/api/contract.js';

export const STEPS = ['model', 'method', 'data', 'hyperparameters', 'train', 'export'] as const;
export type Step = (typeof STEPS)[number];
export type Page = Step | 'runs';

export class Studio {
  /** the page on screen */
  page = $state<Page>('model');

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

  /** step 4: the settings the user changed (the rest are the method's defaults) */
  hyper = $state<RunSettings['hyper']>({});
  /** the last checkRun verdict for these settings */
  check = $state<RunCheck | null>(null);

  /** step 5: the run being trained or last trained (set by the Train page, or by Runs → resume) */
  runId = $state<string | null>(null);
  runDir = $state<string | null>(null);

  /** the desktop app's File menu asked to open a picker (a new nonce per request) */
  menuPick = $state<{ target: 'model' | 'data'; nonce: number } | null>(null);

  /** the error the banner shows; any page reports a failed call with showError(e) */
  error = $state<ApiErrorBody | null>(null);

  /** The settings a run starts with. */
  get runSettings(): RunSettings | null {
    if (!this.model || !this.data || !this.method) return null;
    return {
      model: this.model,
      data: this.data,
      method: this.method,
      dataFormat: this.dataFormat,
      completionOnly: this.completionOnly,
      pack: this.pack,
      hyper: $state.snapshot(this.hyper) as RunSettings['hyper'],
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
    this.hyper = {};
    this.check = null;
  }

  /** Another method has other defaults: the settings changed for the old one go. */
  chooseMethod(method: TrainMethod): void {
    if (method === this.method) return;
    this.method = method;
    this.hyper = {};
    this.check = null;
  }

  /** Shows an error in the banner: an ApiError's body as it is, anything else as a failure. */
  /** File → Open model folder… / Open dataset…: go to that step and open its picker. */
  openFromMenu(target: 'model' | 'data'): void {
    const step = target === 'data' && this.reachable('data') ? 'data' : 'model';
    this.page = step;
    this.menuPick = { target: step, nonce: (this.menuPick?.nonce ?? 0) + 1 };
  }

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
