// The Model page's own state: the demo, recent and Hugging Face cache models
// it offers, the folder being read, and the settings the resource table is
// estimated for.
import type { CachedModels, DemoPaths, InspectModelRequest, RecentItems } from '../../../electron/api/contract.js';
import { api } from '../api/index.js';
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

  async load(): Promise<void> {
    const cached = api.call('cachedModels', {}).then(
      (c) => void (this.cached = c),
      (e: unknown) => this.studio.showError(e),
    );
    ({ demo: this.demo, recent: this.recent } = await loadStartingPoints(this.studio));
    await cached;
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
