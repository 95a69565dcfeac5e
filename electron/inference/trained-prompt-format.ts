// The prompt layout an adapter (or a full fine-tune) was trained with, read
// from its run: a run folder, one of its checkpoints (RUN/checkpoints/step-N)
// or its best adapter (RUN/best, train --keep-best), found as export finds
// them. An adapter from elsewhere says nothing of its data: null then, and
// the caller keeps the plain layout.
import { resolve } from 'node:path';
import type { DatasetFormat } from '../data/options.js';
import { runOfCheckpoint } from '../export/source.js';
import { readRunRecord, recordedDataFormat, type RunRecord } from '../runs/run-record.js';
import { promptFormatOfData, type PromptFormat } from './prompt-format.js';
import { WITH_REASONING } from '../data/chat-template.js';

export interface TrainedPromptFormat {
  format: PromptFormat;
  /** the format of the run's rows */
  dataFormat: DatasetFormat;
  /** chat rows whose assistant turns carried their reasoning, trained (data/chat-template.ts WITH_REASONING) */
  reasoning: boolean;
}

async function recordOf(dir: string) {
  const own = await readRunRecord(dir).catch(() => null);
  if (own) return own;
  const run = await runOfCheckpoint(dir);
  return run ? readRunRecord(run.runDir).catch(() => null) : null;
}

/** The layout of a run's rows, from its run.json; null when not known yet. */
export function trainedPromptFormatOf(record: RunRecord): TrainedPromptFormat | null {
  const dataFormat = recordedDataFormat(record);
  const layouts = (record.resolved?.data as { layouts?: unknown } | undefined)?.layouts;
  const reasoning = Array.isArray(layouts) && layouts.some((l) => typeof l === 'string' && l.endsWith(WITH_REASONING));
  return dataFormat === null ? null : { format: promptFormatOfData(dataFormat), dataFormat, reasoning };
}

export async function trainedPromptFormat(dir: string): Promise<TrainedPromptFormat | null> {
  const record = await recordOf(resolve(dir));
  return record ? trainedPromptFormatOf(record) : null;
}
