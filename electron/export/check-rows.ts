// Which rows an export's reload check scores. Every export is checked, so
// there always are rows:
//   --check-data FILE  the user's rows (any dataset train reads);
//   run data           a run's eval rows: the first rows of its --eval-data
//                      file, or when it trained with --eval-split those of
//                      training's own split (the rows its eval loss was
//                      taken on); otherwise the first rows of its data;
//   built-in sample    a few plain-English sentences shipped here, when no
//                      data is named (an adapter folder) or the run's data
//                      cannot be read any more (moved, deleted, changed).
import { resolve } from 'node:path';
import { DATASET_FORMATS, type DatasetFormatOption } from '../data/index.js';
import type { ModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { TRAIN_DEFAULTS } from '../training/config.js';
import { countTrainedTokens, type Example } from '../training/data.js';
import type { ExportSource } from './source.js';
import { DEFAULT_CHECK_ROWS, loadCheckRows } from './verify.js';

export type CheckRowsFrom = 'run data' | '--check-data' | 'built-in sample';

export interface CheckRows {
  examples: Example[];
  from: CheckRowsFrom;
  /** the data file scored (null for the built-in sample) */
  file: string | null;
  /** run data only: the rows are the run's eval rows (its --eval-data file, or the eval part of its --eval-split) */
  evalRows: boolean;
  /** why the run's data was not used, when it was named but unusable */
  note?: string;
}

/**
 * Short everyday sentences: any tokenizer splits them into ordinary tokens,
 * and every token is trained (a text row: BOS as the tokenizer adds it, EOS
 * appended), so the check covers the whole of each row.
 */
export const BUILT_IN_CHECK_TEXTS: readonly string[] = [
  'The quick brown fox jumps over the lazy dog.',
  'A cup of hot tea is a good way to start a cold morning.',
  'Rivers carry water from the mountains down to the sea.',
  'She wrote the letter by hand and posted it on Monday.',
  'The library opens at nine and closes at six in the evening.',
  'Bread rises when the yeast has had time to work in a warm kitchen.',
  'Our train was late, so we walked along the platform to keep warm.',
  'He planted tomatoes in the garden and watered them every day.',
];

export class CheckRowsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckRowsError';
  }
}

/**
 * The built-in sample as examples of the model's tokenizer, cut to seqLen.
 * A model folder without a tokenizer gets fixed token-id rows instead: the
 * check compares the export with its source, so any in-vocabulary ids do.
 */
export function builtInSample(tokenizer: ModelTokenizer | null, options: { seqLen: number; vocabSize: number; rows: number }): Example[] {
  const texts = BUILT_IN_CHECK_TEXTS.slice(0, Math.max(1, options.rows));
  return texts.map((text, r) => {
    let ids: number[];
    if (tokenizer) {
      ids = tokenizer.eosId === null ? tokenizer.encode(text) : tokenizer.encodeForTraining(text);
      const outside = ids.find((id) => id < 0 || id >= options.vocabSize);
      if (outside !== undefined) {
        throw new CheckRowsError(`${tokenizer.dir}: the tokenizer gives id ${outside} for the reload check's sample text, outside the model's vocabulary [0, ${options.vocabSize}); the tokenizer does not belong to this model. Fix the model folder, or pass --check-data with token-id rows`);
      }
    } else {
      // 12 ids spread over the vocabulary, a different walk per row.
      ids = Array.from({ length: 12 }, (_, t) => (7 + 31 * r + 13 * t * (r + 1)) % options.vocabSize);
    }
    ids = ids.slice(0, options.seqLen);
    return { inputIds: Int32Array.from(ids), labels: Int32Array.from(ids), source: `built-in sample:${r + 1}` };
  }).filter((e) => countTrainedTokens(e.labels) > 0);
}

/** The rows the reload check scores (see the top of the file). */
export async function checkRowsFor(options: { checkData?: string | null; checkRows?: number }, source: ExportSource, folder: ModelFolder): Promise<CheckRows> {
  const rows = options.checkRows ?? DEFAULT_CHECK_ROWS;
  const seqLen = Math.min(source.runSeqLen ?? TRAIN_DEFAULTS.seqLen, folder.spec.maxPositionEmbeddings);
  const vocabSize = folder.spec.vocabSize;
  const tokenizer = folder.hasTokenizer ? await ModelTokenizer.load(folder.dir) : null;
  if (options.checkData) {
    const file = resolve(options.checkData);
    if (!tokenizer) throw new CheckRowsError(`--check-data: ${folder.dir} has no tokenizer.json, which reading data rows needs; add the tokenizer files to the model folder`);
    return { examples: await loadCheckRows(file, tokenizer, { seqLen, vocabSize, rows }), from: '--check-data', file, evalRows: false };
  }

  let note: string | undefined;
  if (source.runData !== null) {
    if (!tokenizer) {
      note = `the run's data cannot be read: ${folder.dir} has no tokenizer.json`;
    } else {
      try {
        const format = (DATASET_FORMATS as readonly string[]).includes(source.runDataFormat ?? '') ? (source.runDataFormat as DatasetFormatOption) : 'auto';
        const read = { seqLen, vocabSize, rows, format, completionOnly: source.runCompletionOnly ?? true };
        // the evaluation file is read as training read it: whole, in file order (no split)
        if (source.runEvalData !== null) {
          return { examples: await loadCheckRows(source.runEvalData, tokenizer, { ...read, role: 'eval' }), from: 'run data', file: source.runEvalData, evalRows: true };
        }
        const evalRows = source.runEvalSplit > 0;
        const examples = await loadCheckRows(source.runData, tokenizer, {
          ...read,
          ...(evalRows ? { evalSplit: { fraction: source.runEvalSplit, seed: source.runSeed ?? TRAIN_DEFAULTS.seed } } : {}),
        });
        return { examples, from: 'run data', file: source.runData, evalRows };
      } catch (err) {
        note = `the run's data could not be used (${(err as Error).message})`;
      }
    }
  }
  const examples = builtInSample(tokenizer, { seqLen, vocabSize, rows });
  return { examples, from: 'built-in sample', file: null, evalRows: false, ...(note === undefined ? {} : { note }) };
}
