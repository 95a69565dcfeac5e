// The Model page's own state: the demo, recent and Hugging Face cache models
// it offers, the folder being read, and the settings the resource table is
// estimated for.
import type { CachedModels, DemoPaths, HyperparameterSpec, InspectModelRequest, ModelOverview, RecentItems } from '../../../electron/api/contract.js';
import { api } from '../api/index.js';
import { parseField } from './hyperparameter-fields.js';
import { loadStartingPoints } from './starting-points.js';
import type { Studio } from './studio.svelte.js';

/** What the estimate may be recalculated for (null: the engine's default). */
export interface EstimateSettings {
  batchSize: number | null;
  seqLen: number | null;
  rank: number | null;
  virtualTokens: number | null;
  gradientCheckpointing: boolean;
}

/** The estimate's fields that take a number, as the run form names them. */
export const ESTIMATE_FIELDS = ['batchSize', 'seqLen', 'rank'] as const;
export type EstimateField = (typeof ESTIMATE_FIELDS)[number];
/** Each field's limits: the run form's own for LoRA on this model (SETTING_LIMITS, and the model's positions for seqLen). */
export type EstimateLimits = Record<EstimateField, HyperparameterSpec>;
const ESTIMATE_LABELS: Record<EstimateField, string> = { batchSize: 'Batch', seqLen: 'Sequence length', rank: 'LoRA rank' };

/**
 * Why the settings an overview was estimated for are no run's (null: they
 * are): a sequence length beyond the model's positions, which `train`
 * refuses. The memory figures are then for a run that cannot start, so the
 * page says so instead of what fits.
 */
export function estimateRefused(overview: ModelOverview): string | null {
  const { seq_len: seqLen } = overview.report.settings;
  const positions = overview.report.sizes.max_positions;
  if (seqLen <= positions) return null;
  return `Training refuses sequence length ${seqLen} on this model: it has ${positions} positions. No method fits a length no run can have; estimate for ${positions} or less.`;
}

/** A snapshot folder of the Hugging Face cache (…/models--org--name/snapshots/<commit>), as the repo id it holds. */
const CACHE_SNAPSHOT = /(?:^|[\\/])models--([^\\/]+)[\\/]snapshots[\\/]([^\\/]+)[\\/]*$/;

/** How a model folder is named on a button: a cache snapshot by its repo id and revision, any other folder by its name. */
export function modelLabel(dir: string): string {
  const cached = CACHE_SNAPSHOT.exec(dir);
  if (cached) return `${cached[1].split('--').join('/')} @ ${cached[2].slice(0, 7)}`;
  return dir.split(/[\\/]/).filter(Boolean).pop() ?? dir;
}

export class ModelPage {
  demo = $state<DemoPaths | null>(null);
  recent = $state<RecentItems | null>(null);
  /** the models already in the Hugging Face cache (those that cannot be opened too, with the reason) */
  cached = $state<CachedModels | null>(null);
  /** the folder being inspected right now */
  loading = $state<string | null>(null);
  /** the last failure of this page, shown inline as well as in the banner */
  error = $state<string | null>(null);
  estimate = $state<EstimateSettings>({ batchSize: null, seqLen: null, rank: null, virtualTokens: null, gradientCheckpointing: false });
  /** the limits of the estimate's fields for the model in use (null until the service said them) */
  estimateLimits = $state<EstimateLimits | null>(null);
  /** what is wrong with the estimate's fields, by field, as the run form words it; nothing is asked while there is any */
  estimateErrors = $state<Partial<Record<EstimateField, string>>>({});
  /** the model field's text: the chosen folder, or what was typed since */
  draft = $state('');
  /** the inspect in progress */
  private reading: Promise<void> | null = null;
  /** answers to older reads are dropped: a newer choice (Enter on one folder, then Next with another) wins */
  #generation = 0;

  constructor(private readonly studio: Studio) {
    this.draft = studio.model ?? '';
    const s = studio.overview?.report.settings;
    if (s) this.estimate = { batchSize: s.batch_size, seqLen: s.seq_len, rank: s.rank, virtualTokens: s.virtual_tokens ?? null, gradientCheckpointing: s.gradient_checkpointing };
  }

  /**
   * Checks the estimate's fields against the run's limits (parseField, as the
   * Hyperparameters page does); returns whether they can be estimated.
   * An empty field is the engine's default.
   */
  checkEstimate(): boolean {
    const errors: Partial<Record<EstimateField, string>> = {};
    for (const field of ESTIMATE_FIELDS) {
      const value = this.estimate[field];
      const spec = this.estimateLimits?.[field];
      if (value === null || value === undefined || !spec) continue;
      const parsed = parseField(spec, String(value));
      if (!parsed.ok) errors[field] = `${ESTIMATE_LABELS[field]}: ${parsed.error}`;
    }
    this.estimateErrors = errors;
    return Object.keys(errors).length === 0;
  }

  /** Reads the estimate fields' limits for `dir` (the run form's, for LoRA); without them the fields take what the engine does. */
  private async readEstimateLimits(dir: string, generation: number): Promise<void> {
    try {
      const specs = await api.call('hyperparameters', { model: dir, method: 'lora' });
      if (generation !== this.#generation) return;
      const byKey = new Map(specs.map((s) => [s.key, s]));
      this.estimateLimits = ESTIMATE_FIELDS.every((f) => byKey.has(f)) ? { batchSize: byKey.get('batchSize')!, seqLen: byKey.get('seqLen')!, rank: byKey.get('rank')! } : null;
    } catch {
      // the limits only help the estimate's form; the model itself loaded (the server refuses what it cannot estimate)
      if (generation === this.#generation) this.estimateLimits = null;
    }
  }

  async load(): Promise<void> {
    const cached = api.call('cachedModels', {}).then(
      (c) => void (this.cached = c),
      (e: unknown) => this.studio.showError(e),
    );
    // back on the page with a model chosen before: its estimate's limits
    const limits = this.studio.model && this.studio.overview ? this.readEstimateLimits(this.studio.model, this.#generation) : null;
    ({ demo: this.demo, recent: this.recent } = await loadStartingPoints(this.studio));
    await Promise.all([cached, limits]);
  }

  /**
   * Next: goes on with the folder the field shows. A typed folder not read
   * yet is read first (or the read in progress awaited); on its error the
   * page stays, with the error shown. Returns whether it went on.
   */
  async next(): Promise<boolean> {
    const shown = this.draft.trim();
    if (shown === '') {
      this.error = 'The model folder field is empty: type a model folder, or choose one with Browse… or the demo.';
      this.studio.showError(new Error(this.error)); // the banner announces it, as a failed read
      return false;
    }
    if (this.reading && this.loading === shown) await this.reading;
    else if (shown !== this.studio.model) await this.inspect(shown);
    else this.error = null; // the folder in use (a typed one that failed before was put back)
    if (this.error !== null || this.studio.model !== shown || !this.studio.overview) return false;
    this.studio.page = 'method';
    return true;
  }

  /** Reads a model folder. A new folder starts the wizard over; the same one only gets a new estimate. */
  inspect(dir: string, withEstimate = false): Promise<void> {
    const reading = this.read(dir, withEstimate);
    this.reading = reading;
    return reading.finally(() => {
      if (this.reading === reading) this.reading = null;
    });
  }

  private async read(dir: string, withEstimate: boolean): Promise<void> {
    const generation = ++this.#generation;
    this.draft = dir;
    this.loading = dir;
    this.error = null;
    this.studio.clearError();
    const request: InspectModelRequest = { model: dir };
    if (withEstimate) {
      const e = this.estimate;
      if (e.batchSize) request.batchSize = e.batchSize;
      if (e.seqLen) request.seqLen = e.seqLen;
      if (e.rank) request.rank = e.rank;
      if (e.virtualTokens) request.virtualTokens = e.virtualTokens;
      request.gradientCheckpointing = e.gradientCheckpointing;
    }
    try {
      const overview = await api.call('inspectModel', request);
      if (generation !== this.#generation) return;
      if (this.studio.model === dir && this.studio.overview) {
        this.studio.overview = overview;
      } else {
        this.studio.chooseModel(dir, overview);
      }
      const s = overview.report.settings;
      this.estimate = { batchSize: s.batch_size, seqLen: s.seq_len, rank: s.rank, virtualTokens: s.virtual_tokens ?? null, gradientCheckpointing: s.gradient_checkpointing };
      this.estimateErrors = {};
      // not awaited: the folder is read (and the page free) once its overview is here
      if (!withEstimate) void this.readEstimateLimits(dir, generation);
      api.call('recent', {}).then(
        (r) => (this.recent = r),
        () => {}, // the list is a convenience; the model itself loaded
      );
    } catch (e) {
      if (generation !== this.#generation) return;
      this.studio.showError(e);
      this.error = (e as Error).message;
    } finally {
      if (generation === this.#generation) this.loading = null;
    }
  }
}
