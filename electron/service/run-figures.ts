// What a run's live events said last, kept by run folder for this service's
// life: the Train page that opens again (after another page, or a reload)
// shows the run as it showed it live. The measured memory is in the step
// events only (metrics.jsonl keeps no memory); the estimate and what was
// available come with the started event; the elapsed time with the last step,
// and with the finished summary; the log line of the time estimate (the
// service keeps no other log lines).
import type { RunLiveFigures } from '../api/contract.js';
import type { RunEvent } from '../runs/events.js';

const NONE: RunLiveFigures = { memory: null, memoryEstimateBytes: null, availableMemoryBytes: null, elapsedSeconds: null, timeLine: null };
/** how the run's time estimate line starts (training/time-estimate.ts describeRunTime) */
const TIME_LINE_START = 'this run: ';

/** A number the events say as NaN until it is known. */
const known = (n: number): number | null => (Number.isFinite(n) ? n : null);

export class RunFigures {
  private readonly byDir = new Map<string, RunLiveFigures>();

  note(runDir: string, e: RunEvent): void {
    const now = this.byDir.get(runDir) ?? NONE;
    if (e.type === 'started') this.byDir.set(runDir, { ...now, memoryEstimateBytes: e.memoryEstimateBytes, availableMemoryBytes: e.availableMemoryBytes });
    else if (e.type === 'step') this.byDir.set(runDir, { ...now, memory: e.memory, elapsedSeconds: known(e.elapsedSeconds) });
    // the run's time estimate, said once before its first step (training/time-estimate.ts describeRunTime)
    else if (e.type === 'log' && e.message.startsWith(TIME_LINE_START)) this.byDir.set(runDir, { ...now, timeLine: e.message });
    else if (e.type === 'finished') this.byDir.set(runDir, { ...now, elapsedSeconds: known(e.summary.elapsed_s) ?? now.elapsedSeconds });
  }

  /** What the live events of the runs in `runDir` said last; null when none trained there in this service. */
  of(runDir: string): RunLiveFigures | null {
    return this.byDir.get(runDir) ?? null;
  }
}
