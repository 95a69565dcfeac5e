// Training progress on stderr: step, loss, learning rate, speed and ETA. On a
// terminal the line is rewritten in place; otherwise (a log file, a parent
// process) each update is its own line, throttled so logs stay short.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

/** Remaining time from the mean time per step so far. */
export function estimateRemaining(stepsDone: number, totalSteps: number, elapsedSeconds: number): number {
  if (stepsDone <= 0) return NaN;
  return (elapsedSeconds / stepsDone) * Math.max(0, totalSteps - stepsDone);
}

export interface ProgressUpdate {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export function formatProgress(u: ProgressUpdate): string {
  const eta = formatDuration(estimateRemaining(u.step, u.totalSteps, u.elapsedSeconds));
  return (
    `step ${u.step}/${u.totalSteps}  loss ${u.loss.toFixed(4)}  lr ${u.lr.toExponential(2)}  ` +
    `${u.tokensPerSecond.toFixed(0)} tok/s  elapsed ${formatDuration(u.elapsedSeconds)}  ETA ${eta}`
  );
}

export class ProgressReporter {
  private lastPrint = 0;

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean },
    private readonly minIntervalMs = 1000,
  ) {}

  update(u: ProgressUpdate): void {
    const now = Date.now();
    const last = u.step === u.totalSteps;
    if (!last && now - this.lastPrint < this.minIntervalMs && u.step !== 1) return;
    this.lastPrint = now;
    const line = formatProgress(u);
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${line}${last ? '\n' : ''}`);
    else this.stream.write(line + '\n');
  }

  message(text: string): void {
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${text}\n`);
    else this.stream.write(text + '\n');
  }
}
