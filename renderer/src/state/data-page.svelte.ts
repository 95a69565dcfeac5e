// The Data page's own state: bundled and recent datasets, the report
// request in flight, and the mask preview of one row.
import type { DataRequest, DemoPaths, RecentItems, RowPreview } from '../../../electron/api/contract.js';
import { api } from '../api/index.js';
import { loadStartingPoints } from './starting-points.js';
import { toErrorBody, type Studio } from './studio.svelte.js';

export class DataPage {
  demo = $state<DemoPaths | null>(null);
  recent = $state<RecentItems | null>(null);
  loading = $state(false);
  /** the last inspect failure, shown inline as well as in the banner */
  error = $state<string | null>(null);

  /** 1-based row of the mask preview */
  row = $state(1);
  preview = $state<RowPreview | null>(null);
  previewLoading = $state(false);
  previewError = $state<string | null>(null);

  /** answers to older requests are dropped (the user may change settings quickly) */
  #generation = 0;

  constructor(private readonly studio: Studio) {}

  async load(): Promise<void> {
    ({ demo: this.demo, recent: this.recent } = await loadStartingPoints(this.studio));
  }

  request(): DataRequest | null {
    const { model, data } = this.studio;
    if (!model || !data) return null;
    const r: DataRequest = { model, data, format: this.studio.dataFormat, completionOnly: this.studio.completionOnly, pack: this.studio.pack };
    if (this.studio.hyper.seqLen) r.seqLen = this.studio.hyper.seqLen;
    return r;
  }

  async choose(path: string): Promise<void> {
    this.studio.data = path;
    this.row = 1;
    await this.inspect();
  }

  /** Reads the dataset with the current settings; the report unlocks the next steps. */
  async inspect(): Promise<void> {
    const request = this.request();
    if (!request) return;
    const generation = ++this.#generation;
    this.loading = true;
    this.error = null;
    this.studio.clearError();
    try {
      const report = await api.call('inspectData', request);
      if (generation !== this.#generation) return;
      this.studio.dataReport = report;
      if (this.row > report.rows.total) this.row = 1;
      void this.showRow(this.row);
      api.call('recent', {}).then(
        (r) => (this.recent = r),
        () => {}, // the list is a convenience; the report itself arrived
      );
    } catch (e) {
      if (generation !== this.#generation) return;
      this.studio.dataReport = null;
      this.preview = null;
      this.studio.showError(e);
      this.error = toErrorBody(e).message;
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
  }

  async showRow(row: number): Promise<void> {
    const request = this.request();
    if (!request || !Number.isInteger(row) || row < 1) return;
    this.row = row;
    this.previewLoading = true;
    this.previewError = null;
    try {
      this.preview = await api.call('previewRow', { ...request, row });
    } catch (e) {
      this.preview = null;
      this.previewError = toErrorBody(e).message;
    } finally {
      this.previewLoading = false;
    }
  }
}
