// metrics.jsonl: one JSON object per line, appended as training goes, so a
// crashed or stopped run still leaves every finished step on disk and the UI
// can follow the file while it grows.
import { appendFileSync, writeFileSync } from 'node:fs';

export interface StepMetrics {
  /** 1-based optimizer step */
  step: number;
  /** mean cross-entropy over the step's label tokens (all micro-batches) */
  loss: number;
  /** learning rate this step used */
  lr: number;
  /** global gradient norm before clipping */
  grad_norm: number;
  /** label tokens the loss counted in this optimizer step (shifted, not -100) */
  tokens: number;
  /** those tokens per second of this step's wall time */
  tokens_per_s: number;
  /** seconds since training started */
  elapsed_s: number;
}

export interface EvalMetrics {
  step: number;
  eval_loss: number;
}

export type MetricsRow = StepMetrics | EvalMetrics;

export class MetricsWriter {
  /** Starts a fresh file (a new run overwrites an old metrics file in the same folder). */
  constructor(readonly file: string) {
    writeFileSync(file, '');
  }

  write(row: MetricsRow): void {
    appendFileSync(this.file, JSON.stringify(row) + '\n');
  }
}
