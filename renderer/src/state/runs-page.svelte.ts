// The Runs page: every run the studio knows (newest first), one selected
// with its history (charts, settings), the runs picked to compare
// (run-compare.svelte.ts), and the ways on from a run: resume an interrupted
// one (where its Resume options say), export a finished one. The table, the
// selected run's charts and the compared runs' follow the runs' live events
// (in bursts at an animation frame, a change of a run's state at once, as
// the Train page takes them), so they never lag behind it.
import type { ApiEvent, ApiTransport, RunEvent, RunHistory, RunIndexEntry } from '../../../electron/api/contract.js';
import { ResumeOptions } from './resume-options.svelte.js';
import { RunCompare } from './run-compare.svelte.js';
import { frameScheduler, RunEventQueue, type FlushScheduler } from './run-monitor-frames.js';
import { RunMonitor } from './run-monitor.svelte.js';
import type { Studio } from './studio.svelte.js';

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Newest activity first. */
export function sortRuns(entries: readonly RunIndexEntry[]): RunIndexEntry[] {
  return [...entries].sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
}

/** A table row after one live event of its run (the same row when nothing shown changes). */
export function entryAfter(entry: RunIndexEntry, e: RunEvent, now: string): RunIndexEntry {
  switch (e.type) {
    case 'started':
      return { ...entry, status: 'running', steps_done: e.startStep, total_steps: e.totalSteps, resumable: false, message: null, updated: now };
    case 'step':
      return { ...entry, status: 'running', steps_done: e.step, total_steps: e.totalSteps, updated: now };
    case 'eval':
      return { ...entry, best_eval_loss: entry.best_eval_loss === null ? e.evalLoss : Math.min(entry.best_eval_loss, e.evalLoss), updated: now };
    case 'paused':
      return { ...entry, status: 'paused', steps_done: Math.max(entry.steps_done, e.step), updated: now };
    case 'resumed':
      return { ...entry, status: 'running', updated: now };
    case 'finished':
      return { ...entry, status: 'finished', steps_done: e.summary.steps, resumable: false, updated: now };
    case 'cancelled':
      return { ...entry, status: 'cancelled', steps_done: Math.max(entry.steps_done, e.step), resumable: e.checkpoint !== null, updated: now };
    case 'failed':
      return { ...entry, status: 'failed', steps_done: Math.max(entry.steps_done, e.step ?? 0), resumable: e.resumable, message: e.message, updated: now };
    default:
      return entry;
  }
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

  /** the runs picked to compare (they outlive a Refresh) */
  readonly compare: RunCompare;

  /** live events heard since the last flush */
  private readonly queue: RunEventQueue<{ runDir: string; event: RunEvent }>;

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
    schedule: FlushScheduler = frameScheduler(),
  ) {
    this.compare = new RunCompare(api, studio);
    this.queue = new RunEventQueue((x) => x.event.type, (events) => this.apply(events), schedule);
  }

  /** Follow the runs' live events; returns the unsubscribe. */
  subscribe(): () => void {
    return this.api.onEvent((e: ApiEvent) => {
      if (e.type !== 'run') return;
      this.queue.push({ runDir: e.runDir, event: e.event });
    });
  }

  /** The queued events into the table (and the selected run's charts) at once. */
  flush(): void {
    this.queue.flush();
  }

  private apply(events: { runDir: string; event: RunEvent }[]): void {
    const now = new Date().toISOString();
    let entries = this.entries;
    let unknownRun = false;
    let ended = false;
    for (const { runDir, event } of events) {
      const i = entries.findIndex((x) => x.dir === runDir);
      if (i < 0) {
        unknownRun = true;
        continue;
      }
      const next = entryAfter(entries[i], event, now);
      if (next !== entries[i]) {
        if (entries === this.entries) entries = entries.slice();
        entries[i] = next;
      }
      if (event.type === 'finished' || event.type === 'cancelled' || event.type === 'failed') ended = true;
    }
    this.entries = sortRuns(entries);
    const selected = this.selected;
    const mine = events.filter((x) => x.runDir === selected).map((x) => x.event);
    if (this.monitor && mine.length > 0) this.monitor.applyAll(mine);
    this.compare.applyAll(events);
    // a run this list has not seen (started elsewhere), or an ending (its record has the adapter and the words): read the list again
    if (unknownRun || ended) void this.refresh();
  }

  get selectedEntry(): RunIndexEntry | null {
    return this.entries.find((e) => e.dir === this.selected) ?? null;
  }

  async refresh(): Promise<void> {
    this.loading = true;
    this.error = null;
    try {
      const listed = sortRuns(await this.api.call('listRuns', {}));
      // events heard while the list was read are newer than it
      this.entries = listed;
      this.flush();
      this.compare.sync(this.entries);
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
