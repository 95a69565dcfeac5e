// The Data page's own state: bundled and recent datasets, the report
// request in flight, the mask preview of one row, and the optional
// evaluation file (read with the same settings, by the same call).
import { ApiError, type DataRequest, type DemoPaths, type RecentItems, type RowPreview } from '../../../electron/api/contract.js';
import { api } from '../api/index.js';
import { loadStartingPoints } from './starting-points.js';
import { readKeyOf, toErrorBody, type Studio } from './studio.svelte.js';

/** The row a typed preview row number names, or why it names none ("1".."total", whole numbers only). */
export function parseRowNumber(text: string, total: number): { ok: true; row: number } | { ok: false; error: string } {
  const range = total === 1 ? 'Row 1 is the only row' : `Rows are numbered from 1 to ${total}`;
  const t = text.trim();
  if (t === '') return { ok: false, error: `Enter a row number. ${range}.` };
  const row = Number(t);
  if (!/^[+]?\d+$/.test(t) || !Number.isSafeInteger(row) || row < 1 || row > total) return { ok: false, error: `There is no row ${t}. ${range}.` };
  return { ok: true, row };
}

export class DataPage {
  demo = $state<DemoPaths | null>(null);
  recent = $state<RecentItems | null>(null);
  loading = $state(false);
  /** the dataset field's text: the chosen file, or what was typed since */
  draft = $state('');
  /** the last inspect failure, shown inline as well as in the banner */
  error = $state<string | null>(null);

  /** 1-based row of the mask preview */
  row = $state(1);
  /** what the Row field holds (the user's text, even when it names no row) and why it names none */
  rowText = $state('1');
  rowError = $state<string | null>(null);
  preview = $state<RowPreview | null>(null);
  previewLoading = $state(false);
  previewError = $state<string | null>(null);

  /** the evaluation file's field text, its read in flight and why the last one failed */
  evalDraft = $state('');
  evalLoading = $state(false);
  evalError = $state<string | null>(null);

  /** answers to older requests are dropped (the user may change settings quickly) */
  #generation = 0;
  #evalGeneration = 0;

  constructor(private readonly studio: Studio) {
    this.draft = studio.data ?? '';
    this.evalDraft = studio.evalData ?? '';
  }

  /**
   * The page opened: the report we have is shown (its first row's preview)
   * while it was read with the settings as they are; one read with others
   * (the Sequence length changed on the Hyperparameters page, or the report
   * went with a change of model) is read again. So is the evaluation file's.
   */
  opened(): void {
    const now = this.studio.dataReadKey;
    if (this.studio.data && this.studio.dataReport && this.studio.dataReadWith === now) void this.showRow(1);
    else if (this.studio.data) void this.inspect();
    if (this.studio.evalData && (!this.studio.evalReport || this.studio.evalReadWith !== now)) void this.inspectEval();
  }

  /**
   * The Sequence length set on the Hyperparameters page, while the file cannot
   * be read with it (the run would refuse it too): the page offers the default
   * instead, since the field that changes it is on a step the failed read closes.
   */
  get failedAtSeqLen(): number | null {
    return this.error !== null && this.studio.dataReport === null && this.studio.hyper.seqLen !== undefined ? this.studio.hyper.seqLen : null;
  }

  /** Reads the file again at the model's default sequence length (the Sequence length set on the Hyperparameters page is dropped). */
  async useDefaultSeqLen(): Promise<void> {
    const hyper = { ...this.studio.hyper };
    delete hyper.seqLen;
    this.studio.hyper = hyper;
    await this.inspect();
    if (this.studio.evalData) await this.inspectEval();
  }

  async load(): Promise<void> {
    ({ demo: this.demo, recent: this.recent } = await loadStartingPoints(this.studio));
  }

  request(data: string | null = this.studio.data): DataRequest | null {
    const { model } = this.studio;
    if (!model || !data) return null;
    const r: DataRequest = { model, data, format: this.studio.dataFormat, completionOnly: this.studio.completionOnly, pack: this.studio.pack };
    if (this.studio.hyper.seqLen) r.seqLen = this.studio.hyper.seqLen;
    return r;
  }

  /**
   * Next: goes on with the file the field shows. A typed file not read yet
   * is read first; if it does not become the dataset (it fails), the page
   * stays, with its error shown. An empty field goes on with the dataset in
   * use. Returns whether it went on.
   */
  async next(): Promise<boolean> {
    const shown = this.draft.trim();
    if (shown !== '' && shown !== this.studio.data) await this.choose(shown);
    else if (this.studio.dataReport) this.error = null; // the file in use (a typed one that failed before was put back)
    if (this.error !== null || (shown !== '' && this.studio.data !== shown) || !this.studio.dataReport) return false;
    // the evaluation field as shown: a typed file is read first, an emptied field means none
    const evalShown = this.evalDraft.trim();
    if (evalShown === '') this.clearEval();
    else if (evalShown !== this.studio.evalData) await this.chooseEval(evalShown);
    if (evalShown !== '' && (this.studio.evalData !== evalShown || !this.studio.evalReport)) return false;
    this.studio.page = 'hyperparameters';
    return true;
  }

  /** Another file: it becomes the dataset once it reads; until then (and if it fails) the one before stays. */
  async choose(path: string): Promise<void> {
    await this.inspect(path);
  }

  /**
   * Reads a dataset with the current settings (`path`: a newly chosen file;
   * default: the chosen one again, after a change of settings). The report
   * unlocks the next steps. A new file that fails leaves the previous
   * dataset chosen, and the message says so; the same file failing under
   * new settings has no report for those settings, so it has none.
   */
  async inspect(path: string | null = this.studio.data): Promise<void> {
    const request = this.request(path);
    if (!request) return;
    const generation = ++this.#generation;
    const previous = this.studio.dataReport ? this.studio.data : null;
    const newFile = path !== this.studio.data;
    this.loading = true;
    this.error = null;
    this.studio.clearError();
    try {
      const report = await api.call('inspectData', request);
      if (generation !== this.#generation) return;
      if (newFile) this.row = 1;
      this.studio.data = path;
      this.studio.dataReport = report;
      this.studio.dataReadWith = readKeyOf(request);
      if (this.row > report.rows.total) this.row = 1;
      void this.showRow(this.row);
      api.call('recent', {}).then(
        (r) => (this.recent = r),
        () => {}, // the list is a convenience; the report itself arrived
      );
    } catch (e) {
      if (generation !== this.#generation) return;
      const body = { ...toErrorBody(e) };
      if (newFile && previous !== null) {
        body.message = `${body.message}\n\nStill using the previous dataset: ${previous}`;
      } else {
        this.studio.data = path;
        this.studio.dataReport = null;
        this.preview = null;
      }
      // the banner announces it (role=alert); the page repeats it where it happened, as plain text
      this.studio.showError(new ApiError(body));
      this.error = body.message;
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
  }

  /** Another evaluation file: it is used once it reads with the dataset's settings. */
  async chooseEval(path: string): Promise<void> {
    await this.inspectEval(path);
  }

  /**
   * Reads the evaluation file as the dataset is read (format, answers only,
   * packing, sequence length): the run reads it so. A new file that fails
   * leaves the one before in use, and the message says so; the file in use
   * failing under new settings is no longer used (the run would refuse it).
   */
  async inspectEval(path: string | null = this.studio.evalData): Promise<void> {
    const request = this.request(path);
    if (!request) return;
    const generation = ++this.#evalGeneration;
    const previous = this.studio.evalReport ? this.studio.evalData : null;
    this.evalLoading = true;
    this.evalError = null;
    try {
      // a folder: its validation split (else test), as the run will read it
      const report = await api.call('inspectData', { ...request, role: 'eval' });
      if (generation !== this.#evalGeneration) return;
      this.studio.evalData = path;
      this.studio.evalReport = report;
      this.studio.evalReadWith = readKeyOf(request);
    } catch (e) {
      if (generation !== this.#evalGeneration) return;
      const message = toErrorBody(e).message;
      if (previous !== null && path !== previous) {
        this.evalError = `${message}\n\nStill using the previous evaluation file: ${previous}`;
      } else {
        this.studio.evalData = null;
        this.studio.evalReport = null;
        this.evalError = `${message}\n\nNo evaluation file is used.`;
      }
    } finally {
      if (generation === this.#evalGeneration) this.evalLoading = false;
    }
  }

  /** No evaluation file: the run evaluates on its eval split again (if it has one). */
  clearEval(): void {
    this.#evalGeneration++;
    this.studio.evalData = null;
    this.studio.evalReport = null;
    this.evalDraft = '';
    this.evalError = null;
    this.evalLoading = false;
  }

  /** The user typed in the Row field: a row number shows that row, anything else says why it cannot. */
  editRow(text: string): void {
    this.rowText = text;
    this.rowError = null;
  }

  /** Shows the row the Row field names, or says why it names none. */
  async showTypedRow(): Promise<void> {
    const total = this.studio.dataReport?.rows.total ?? 0;
    const parsed = parseRowNumber(this.rowText, total);
    if (!parsed.ok) {
      this.rowError = parsed.error;
      return;
    }
    await this.showRow(parsed.row);
  }

  async showRow(row: number): Promise<void> {
    const request = this.request();
    if (!request || !Number.isInteger(row) || row < 1) return;
    this.row = row;
    this.rowText = String(row);
    this.rowError = null;
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
