// The Model page's own state: the demo and recent paths it offers, the
// folder being read, and the settings the resource table is estimated for.
import type { DemoPaths, InspectModelRequest, RecentItems } from '../../../electron/api/contract.js';
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

export class ModelPage {
  demo = $state<DemoPaths | null>(null);
  recent = $state<RecentItems | null>(null);
  /** the folder being inspected right now */
  loading = $state<string | null>(null);
  /** the last failure of this page, shown inline as well as in the banner */
  error = $state<string | null>(null);
  estimate = $state<EstimateSettings>({ batchSize: null, seqLen: null, rank: null, virtualTokens: null, gradientCheckpointing: false });

  constructor(private readonly studio: Studio) {
    const s = studio.overview?.report.settings;
    if (s) this.estimate = { batchSize: s.batch_size, seqLen: s.seq_len, rank: s.rank, virtualTokens: s.virtual_tokens ?? null, gradientCheckpointing: s.gradient_checkpointing };
  }

  async load(): Promise<void> {
    ({ demo: this.demo, recent: this.recent } = await loadStartingPoints(this.studio));
  }

  /** Reads a model folder. A new folder starts the wizard over; the same one only gets a new estimate. */
  async inspect(dir: string, withEstimate = false): Promise<void> {
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
      this.studio.showError(e);
      this.error = (e as Error).message;
    } finally {
      this.loading = null;
    }
  }
}
