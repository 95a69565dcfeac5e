// The Runs page: every run the studio knows (newest first), one selected
// with its history (charts, settings), and the ways on from a run: resume
// an interrupted one, export a finished one.
import type { ApiTransport, RunHistory, RunIndexEntry } from '../../../electron/api/contract.js';
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
    try {
      const history = await this.api.call('runHistory', { runDir: dir });
      if (this.selected !== dir) return;
      const monitor = new RunMonitor();
      monitor.loadHistory(history);
      this.history = history;
      this.monitor = monitor;
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

  async resume(entry: RunIndexEntry): Promise<void> {
    this.resuming = true;
    try {
      const started = await this.api.call('resumeRun', { runDir: entry.dir });
      this.studio.runId = started.runId;
      this.studio.runDir = started.runDir;
      this.studio.page = 'train';
    } catch (e) {
      this.studio.showError(e);
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
