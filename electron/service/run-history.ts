// A run folder's history for the Runs page and a past run's charts: its
// run.json (settings, status, the settings that look like a slip) and metrics.jsonl (one row per step, plus eval
// rows). A torn last line (a run killed mid-append) is skipped.
import { readFile } from 'node:fs/promises';
import type { RunHistory } from '../api/contract.js';
import { runPaths } from '../runs/layout.js';
import { entryFromRecord } from '../runs/run-index.js';
import { readRunRecord, recordedWarnings } from '../runs/run-record.js';
import { trainedPromptFormatOf } from '../inference/trained-prompt-format.js';
import { failed, invalid } from './errors.js';

function metricRows(text: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const row = JSON.parse(line) as unknown;
      if (typeof row === 'object' && row !== null) rows.push(row as Record<string, unknown>);
    } catch {
      // a torn line: the run stopped while writing it
    }
  }
  return rows;
}

const isNum = (v: unknown): v is number => typeof v === 'number';

export async function runHistory(dir: string, runId: string | null): Promise<RunHistory> {
  const record = await readRunRecord(dir);
  if (!record) {
    // a run that is starting writes its record once its data is read
    if (runId !== null) throw failed(`${dir}: the run is starting; its record is written once it has read its data`);
    // 'invalid' on runDir: the answer that no run is there, nor starting (the Train page tells it from a lost connection)
    throw invalid('runDir', `${dir}: has no run.json, so it is not a run folder; choose the folder of a run`);
  }
  const text = await readFile(runPaths(dir).metrics, 'utf8').catch(() => '');
  const steps: RunHistory['steps'] = [];
  const evals: RunHistory['evals'] = [];
  for (const row of metricRows(text)) {
    if (isNum(row.step) && isNum(row.eval_loss)) evals.push({ step: row.step, evalLoss: row.eval_loss });
    else if (isNum(row.step) && isNum(row.loss)) {
      steps.push({ step: row.step, loss: row.loss, lr: Number(row.lr), gradNorm: Number(row.grad_norm), tokensPerSecond: Number(row.tokens_per_s), elapsedSeconds: isNum(row.elapsed_s) ? row.elapsed_s : null,
        inputTokensPerSecond: isNum(row.input_tokens_per_s) ? row.input_tokens_per_s : null });
    }
  }
  const trainable = record.resolved?.trainable_parameters;
  return { dir, entry: entryFromRecord(dir, record), config: record.config, steps, evals, trainableParams: isNum(trainable) ? trainable : null, warnings: recordedWarnings(record), trainedPromptFormat: trainedPromptFormatOf(record)?.format ?? null, runId };
}
