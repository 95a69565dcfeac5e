// metrics.jsonl: one JSON object per line, appended as training goes, so a
// crashed or stopped run still leaves every finished step on disk and the UI
// can follow the file while it grows.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { codeAndCause, FileWriteError, writeFileAtomic } from '../files/atomic.js';

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
  /** the data's tokens the model read this step (prompts included; padding and prompt tuning's virtual tokens not; absent in older metrics files) */
  input_tokens?: number;
  /** those tokens per second of this step's wall time */
  input_tokens_per_s?: number;
  /** seconds since training started */
  elapsed_s: number;
}

export interface EvalMetrics {
  step: number;
  eval_loss: number;
}

export type MetricsRow = StepMetrics | EvalMetrics;

export class MetricsWriter {
  /**
   * Starts a fresh file (a new run overwrites an old metrics file in the same
   * folder), or with `append` continues one (a resumed run, after
   * cutMetricsAfter put it back to its checkpoint).
   */
  constructor(readonly file: string, options: { append?: boolean } = {}) {
    if (!options.append) writeFileSync(file, '');
  }

  /** Throws FileWriteError naming the file and the cause (a full disk, a read-only folder): Node's own error names neither. */
  write(row: MetricsRow): void {
    try {
      appendFileSync(this.file, JSON.stringify(row) + '\n');
    } catch (e) {
      if (typeof (e as NodeJS.ErrnoException).code !== 'string') throw e;
      throw new FileWriteError(this.file, `writing failed (${codeAndCause(e)})`, 'Check free disk space and permissions, then try again.');
    }
  }
}

/**
 * Keeps the rows of steps up to `step` (step and eval rows alike) and drops the
 * rest, so a run resumed from the checkpoint of `step` appends to a file that
 * matches it. A torn last line (a kill in the middle of an append) is dropped
 * too. Returns the rows kept.
 */
export async function cutMetricsAfter(file: string, step: number): Promise<MetricsRow[]> {
  if (!existsSync(file)) {
    await writeFileAtomic(file, '');
    return [];
  }
  const kept: MetricsRow[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    let row: MetricsRow;
    try {
      row = JSON.parse(line) as MetricsRow;
    } catch {
      continue; // only the last line can be torn; nothing after it was written
    }
    if (typeof row.step === 'number' && row.step <= step) kept.push(row);
  }
  await writeFileAtomic(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  return kept;
}
