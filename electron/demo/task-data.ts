// The demo's task files ({"prompt", "completion"} JSON lines) read, checked
// and turned into training examples with the prompt masked: the loss counts
// the completion and the EOS after it, never the question.
import { readFile } from 'node:fs/promises';
import { IGNORE_INDEX, type Example } from '../training/data.js';
import type { ModelTokenizer } from '../models/tokenizer.js';
import type { TaskRow } from './task.js';

export async function readTaskRows(file: string): Promise<TaskRow[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the demo's files are in resources/demo (rebuild them with scripts/demo/build-demo-model.mjs)`);
  }
  const rows: TaskRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const r = row as Partial<TaskRow> | null;
    if (typeof r !== 'object' || r === null || typeof r.prompt !== 'string' || typeof r.completion !== 'string') {
      throw new Error(`${file}:${i + 1}: expected {"prompt": "...", "completion": "..."}`);
    }
    rows.push({ prompt: r.prompt, completion: r.completion });
  });
  if (rows.length === 0) throw new Error(`${file}: has no rows`);
  return rows;
}

/** BOS + prompt, then completion + EOS; labels -100 over the prompt. */
export function maskedExample(row: TaskRow, tokenizer: ModelTokenizer, source: string): Example {
  const promptIds = tokenizer.encode(row.prompt);
  const completionIds = tokenizer.encode(row.completion, { addSpecialTokens: false });
  if (tokenizer.eosId === null) throw new Error(`${tokenizer.dir}: the tokenizer has no EOS token; the demo model needs one`);
  completionIds.push(tokenizer.eosId);
  return {
    inputIds: Int32Array.from([...promptIds, ...completionIds]),
    labels: Int32Array.from([...promptIds.map(() => IGNORE_INDEX), ...completionIds]),
    source,
  };
}

/** Pre-tokenized JSON lines ({"input_ids", "labels"}), the form `train --data` reads. */
export function tokenizedJsonl(examples: readonly Example[]): string {
  // Array.from: JSON.stringify writes an Int32Array as an object of indices
  return examples.map((e) => JSON.stringify({ input_ids: Array.from(e.inputIds), labels: Array.from(e.labels) })).join('\n') + '\n';
}
