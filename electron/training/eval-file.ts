// A run's separate evaluation file (--eval-data): read exactly as its
// training data is (the same container and row readers, --format, masking,
// --seq-len truncation; packing is loadRunData's, after this), before any
// training starts, so a useless file fails now rather than at the first
// evaluation. The reader skips a row with no token to score (every label
// masked, one token), so every row it gives counts in the eval loss.
import { loadDataset } from '../data/index.js';
import type { ModelFolder } from '../models/folder.js';
import type { ModelTokenizer } from '../models/tokenizer.js';
import { summarizeDataset, type RunDataSummary } from '../runs/data-summary.js';
import { countOf } from '../text/plural.js';
import type { TrainConfig } from './config.js';
import type { Example } from './data.js';

export interface EvalFileRows {
  /** the file's usable rows as examples, unpacked, in file order */
  examples: Example[];
  /** log lines, each naming the file */
  notes: string[];
  /** the file's dataset report, compact (run.json resolved.eval_data, the started event) */
  summary: RunDataSummary;
}

/** Reads `file` as the run's evaluation rows; an unreadable file, or one with nothing to score, is an error naming it. */
export async function loadEvalFile(file: string, config: Pick<TrainConfig, 'dataFormat' | 'seqLen' | 'completionOnly'>, tokenizer: ModelTokenizer, folder: ModelFolder): Promise<EvalFileRows> {
  let loaded;
  try {
    loaded = await loadDataset(file, tokenizer, {
      format: config.dataFormat,
      seqLen: config.seqLen,
      completionOnly: config.completionOnly,
      pack: false,
      vocabSize: folder.spec.vocabSize,
      // a folder split by name (a Hugging Face dataset): its validation split, else its test split
      role: 'eval',
    });
  } catch (e) {
    // the reader's message names the file; say which of the run's files it is
    throw new Error(`the evaluation file (--eval-data) cannot be used: ${(e as Error).message}`, { cause: e });
  }
  const { examples, report } = loaded;
  const notes = [`note: evaluating on ${countOf(examples.length, 'row')} of ${file} (--eval-data)`];
  // the reader's notices about a folder already name it
  for (const notice of report.notices) notes.push(`note: ${notice.startsWith(`${file}: `) ? notice : `${file}: ${notice}`}`);
  if (report.truncation.rows > 0) {
    notes.push(`note: ${file}: ${countOf(report.truncation.rows, 'row')} truncated to --seq-len ${config.seqLen} (${countOf(report.truncation.tokensDropped, 'token')} dropped)`);
  }
  return { examples, notes, summary: summarizeDataset(report) };
}
