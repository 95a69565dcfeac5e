// The Runs page: every run the studio knows (newest first), one selected
// with its history (charts, settings), and the ways on from a run: resume
// an interrupted one (where its Resume options say), export a finished one.
import type { ApiTransport, RunHistory, RunIndexEntry } from '../../../electron/api/contract.js';
import { ResumeOptions } from './resume-options.svelte.js';
import { RunMonitor } from './run-monitor.svelte.js';
import type { Studio } from './studio.svelte.js';

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Newest activity first. */
export function sortRuns(entries: readonly RunIndexEntry[]): RunIndexEntry[] {
  return [...entries].sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
}

export class RunsPage {
  entries = $state.raw<RunIndexEntry[]>([]);
  loading = $state(false);
  error = $state<string | null>(null);
  selected = $state<string | null>(null);
  history = $state.raw<RunHistory | null>(null);
  /** the selected run's charts, drawn from its history */
  monitor = $state.raw<RunMonitor | null>(null);
  historyError = $state<string | null>(null);
  resuming = $state(false);
  /** where Resume continues the selected run (set when it can be resumed) */
  resumeOptions = $state.raw<ResumeOptions | null>(null);

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
  ) {}

  get selectedEntry(): RunIndexEntry | null {
    return this.entries.find((e) => e.dir === this.selected) ?? null;
  }

  async refresh(): Promise<void> {
    this.loading = true;
    this.error = null;
    try {
      this.entries = sortRuns(await this.api.call('listRuns', {}));
    } catch (e) {
      this.error = messageOf(e);
    } finally {
      this.loading = false;
    }
  }

  async select(dir: string): Promise<void> {
    this.selected = dir;
    this.history = null;
    this.monitor = null;
    this.historyError = null;
    this.resumeOptions = null;
    try {
      const history = await this.api.call('runHistory', { runDir: dir });
      if (this.selected !== dir) return;
      const monitor = new RunMonitor();
      monitor.loadHistory(history);
      this.history = history;
      this.monitor = monitor;
      if (history.entry.resumable && history.runId === null && !monitor.live) {
        const options = new ResumeOptions(this.api, dir);
        this.resumeOptions = options;
        void options.load(history.config);
      }
    } catch (e) {
      if (this.selected === dir) this.historyError = messageOf(e);
    }
  }

  /** A live run: watch it on the Train page. */
  watch(entry: RunIndexEntry): void {
    this.studio.runDir = entry.dir;
    this.studio.runId = this.history?.dir === entry.dir ? this.history.runId : null;
    this.studio.page = 'train';
  }

  /** Continue the run, where its Resume options say (as recorded while they load); opens the Train page. */
  async resume(entry: RunIndexEntry): Promise<void> {
    this.resuming = true;
    const options = this.resumeOptions?.runDir === entry.dir ? this.resumeOptions : null;
    try {
      const started = await this.api.call('resumeRun', { runDir: entry.dir, ...(options?.attempt() ?? {}) });
      this.studio.runId = started.runId;
      this.studio.runDir = started.runDir;
      this.studio.page = 'train';
    } catch (e) {
      // a device or precision refused shows on the options; anything else in the banner
      if (!options?.takeError(e)) this.studio.showError(e);
    } finally {
      this.resuming = false;
    }
  }

  openInExport(entry: RunIndexEntry): void {
    this.studio.runDir = entry.dir;
    this.studio.runId = null;
    this.studio.model = entry.model;
    this.studio.page = 'export';
  }
}
