// metrics.jsonl: one JSON object per line, appended as training goes, so a
// crashed or stopped run still leaves every finished step on disk and the UI
// can follow the file while it grows.
import { appendFileSync, writeFileSync } from 'node:fs';

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  /** label tokens counted in this optimizer step */
  tokens: number;
  tokens_per_s: number;
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

/** Parses a metrics.jsonl file's text (used by tests and readers of a run folder). */
export function parseMetrics(text: string): MetricsRow[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as MetricsRow);
}

export function isStepRow(row: MetricsRow): row is StepMetrics {
  return 'loss' in row;
}
