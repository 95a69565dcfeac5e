// The runs picked on the Runs page to compare side by side: each one's
// history read once when it is picked (its own loading or error state), its
// chart points in a RunMonitor that also takes the runs' live events (the
// page hands them over in the bursts it already takes: one filter per burst,
// so following a running run costs next to nothing), and a colour that stays
// with it while it is picked. The picks outlive a Refresh of the table and a
// visit to other pages (kept in the studio); a run that left the list, or
// whose folder is gone, drops out with a note.
import type { ApiTransport, RunEvent, RunHistory, RunIndexEntry } from '../../../electron/api/contract.js';
import { RUN_COLORS } from '../components/charts/series.js';
import { compareRunSettings, evalLossCaveat, resultRows, runName, type ResultRow, type RunOutcome, type SettingsComparison } from './run-compare-facts.js';
import { evaluationWords } from './run-config-facts.js';
import { RunMonitor, statusWords } from './run-monitor.svelte.js';

export interface ComparedRun {
  readonly dir: string;
  readonly name: string;
  /** its place in RUN_COLORS (past the end: the colours again, dashed); kept while it stays picked */
  readonly slot: number;
  /** null while its history is read, or when it could not be */
  readonly history: RunHistory | null;
  readonly error: string | null;
  /** its chart points and live state; made at the pick, so events heard while the history loads are kept */
  readonly monitor: RunMonitor;
}

/** A run's line colour on the comparison's charts, and whether it is dashed (more runs than colours). */
export function runLine(run: Pick<ComparedRun, 'slot'>): { color: string; dashed: boolean } {
  return { color: RUN_COLORS[run.slot % RUN_COLORS.length], dashed: run.slot >= RUN_COLORS.length };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class RunCompare {
  /** in the order they were picked: the table's columns and the legends' order */
  runs = $state.raw<ComparedRun[]>([]);
  /** why runs left the comparison at a Refresh; cleared when the picks change */
  notes = $state.raw<string[]>([]);

  /** the newest read of each run's history: an older one that answers late is dropped */
  private readonly reads = new Map<string, symbol>();

  /**
   * kept: where the picks outlive this comparison (the studio's comparedRuns: the
   * Runs page makes a new one each time it opens); its runs are picked again at once.
   */
  constructor(private readonly api: ApiTransport, private readonly kept: { comparedRuns: string[] } | null = null) {
    for (const dir of kept?.comparedRuns ?? []) this.toggle(dir);
  }

  /** The picks, where they outlive this comparison. */
  private remember(): void {
    if (this.kept) this.kept.comparedRuns = this.runs.map((r) => r.dir);
  }

  isPicked(dir: string): boolean {
    return this.runs.some((r) => r.dir === dir);
  }

  /** The runs whose history is read, in pick order: the charts' and the table's. */
  get loaded(): (ComparedRun & { history: RunHistory })[] {
    return this.runs.filter((r): r is ComparedRun & { history: RunHistory } => r.history !== null);
  }

  toggle(dir: string): void {
    this.notes = [];
    if (this.isPicked(dir)) {
      this.runs = this.runs.filter((r) => r.dir !== dir);
      this.reads.delete(dir);
      this.remember();
      return;
    }
    const taken = new Set(this.runs.map((r) => r.slot));
    let slot = 0;
    while (taken.has(slot)) slot++;
    const run: ComparedRun = { dir, name: runName(dir), slot, history: null, error: null, monitor: new RunMonitor() };
    this.runs = [...this.runs, run];
    this.remember();
    void this.read(dir);
  }

  private update(dir: string, change: Partial<Pick<ComparedRun, 'history' | 'error' | 'monitor'>>): void {
    this.runs = this.runs.map((r) => (r.dir === dir ? { ...r, ...change } : r));
  }

  /** fresh: the run moved on since its history was read; its points start over from the new read. */
  private async read(dir: string, fresh = false): Promise<void> {
    const token = Symbol(dir);
    this.reads.set(dir, token);
    this.update(dir, { error: null });
    try {
      const history = await this.api.call('runHistory', { runDir: dir });
      if (this.reads.get(dir) !== token) return;
      const run = this.runs.find((r) => r.dir === dir);
      if (!run) return;
      const monitor = fresh ? new RunMonitor() : run.monitor;
      monitor.loadHistory(history);
      this.update(dir, { history, monitor });
    } catch (e) {
      if (this.reads.get(dir) === token) this.update(dir, { error: messageOf(e) });
    }
  }

  /**
   * The table was read again: a picked run no longer listed, or whose folder
   * is gone, leaves the comparison (with a note); one whose history could not
   * be read is tried again, and one that moved on since its history was read
   * (a CLI run or resume this app heard nothing of: its listed entry is newer)
   * is read again, so its charts and results do not lag its steps and status.
   */
  sync(entries: readonly RunIndexEntry[]): void {
    const byDir = new Map(entries.map((e) => [e.dir, e]));
    const gone = this.runs.filter((r) => (byDir.get(r.dir)?.status ?? 'missing') === 'missing');
    if (gone.length > 0) {
      this.notes = [
        ...this.notes,
        ...gone.map((r) => `${r.name} left the comparison: ${byDir.has(r.dir) ? 'its folder is gone or damaged' : 'it is no longer in the list of runs'}.`),
      ];
      const goneDirs = new Set(gone.map((r) => r.dir));
      for (const dir of goneDirs) this.reads.delete(dir);
      this.runs = this.runs.filter((r) => !goneDirs.has(r.dir));
      this.remember();
    }
    for (const r of this.runs) {
      const listed = byDir.get(r.dir);
      const read = r.history?.entry;
      const movedOn = read !== undefined && listed !== undefined &&
        (listed.updated !== read.updated || listed.steps_done !== read.steps_done || listed.status !== read.status);
      if (r.error !== null || movedOn) void this.read(r.dir, movedOn);
    }
  }

  /** Live events (a burst, in order) into the picked runs' charts. */
  applyAll(events: readonly { runDir: string; event: RunEvent }[]): void {
    for (const run of this.runs) {
      const mine = events.filter((x) => x.runDir === run.dir).map((x) => x.event);
      if (mine.length > 0) run.monitor.applyAll(mine);
    }
  }

  /** The settings of the loaded runs that differ, and those the same in all. */
  get settings(): SettingsComparison {
    return compareRunSettings(this.loaded.map((r) => r.history.config));
  }

  /** Why their eval losses do not compare directly (null: they do). */
  get caveat(): string | null {
    return evalLossCaveat(this.loaded.map((r) => r.history.config));
  }

  /**
   * The loaded runs' results; `entries` is the table's list, which live
   * events keep current (status, steps), else the history's own entry.
   */
  results(entries: readonly RunIndexEntry[]): ResultRow[] {
    return resultRows(this.loaded.map((r) => this.outcome(r, entries.find((e) => e.dir === r.dir) ?? r.history.entry)));
  }

  private outcome(r: ComparedRun & { history: RunHistory }, entry: RunIndexEntry): RunOutcome {
    return {
      evaluates: evaluationWords(r.history.config) !== null,
      evals: r.monitor.evals,
      points: r.monitor.points.map((p) => ({ step: p.step, loss: p.loss })),
      stepsDone: Math.max(entry.steps_done, r.monitor.step),
      totalSteps: entry.total_steps ?? r.monitor.totalSteps,
      status: statusWords(entry.status, entry.stopped_by),
      trainableParams: r.history.trainableParams,
      // live: the monitor's; a past run: metrics.jsonl's elapsed_s at its last step (counted across resumes)
      elapsedSeconds: r.monitor.elapsedSeconds ?? lastElapsed(r.history),
    };
  }
}

/** Training time up to the last step the history records, when metrics.jsonl says it. */
function lastElapsed(history: RunHistory): number | null {
  for (let i = history.steps.length - 1; i >= 0; i--) {
    const e = history.steps[i].elapsedSeconds;
    if (e !== null) return e;
  }
  return null;
}
