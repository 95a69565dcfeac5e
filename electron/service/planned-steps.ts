// How many optimizer steps a run of these settings would take, counted the
// way the run counts them: Steps when set, else the epochs over the training
// rows that loadRunData (THE place a run reads its data) leaves after the
// eval split, packing and dropping rows with nothing to learn. checkRun needs
// it to warn about warmup reaching past the end before the run starts.
//
// Counting epochs means tokenizing the dataset, so the last count is kept
// and reused while nothing it depends on changed (the form re-checks after
// every edit, and most edits, lr or rank, leave the data as it was).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelFolder } from '../models/folder.js';
import { ModelTokenizer, TOKENIZER_FILE } from '../models/tokenizer.js';
import type { TrainConfig } from '../training/config.js';
import { loadRunData } from '../training/run.js';
import { totalSteps } from '../training/trainer.js';

/** The last count of training rows, and what it was counted for. */
let last: { key: string; trainRows: number } | null = null;

/** Everything loadRunData's row count depends on: the files (by size and time) and the settings that read them. */
async function rowsKey(config: TrainConfig, folder: ModelFolder): Promise<string> {
  // tokenizer_config.json holds the chat template (how chat rows tokenize) and config.json the model's own limits
  const files = [config.data, join(folder.dir, TOKENIZER_FILE), join(folder.dir, 'tokenizer_config.json'), join(folder.dir, 'config.json')];
  const stamps = await Promise.all(files.map(async (file) => {
    try {
      const s = await stat(file);
      return [s.size, s.mtimeMs];
    } catch {
      return null; // an absent optional file is part of the key too
    }
  }));
  const { dataFormat, seqLen, completionOnly, pack, evalSplit, seed } = config;
  return JSON.stringify([folder.dir, files, stamps, dataFormat, seqLen, completionOnly, pack, evalSplit, seed]);
}

/** The training rows a run of `config` would have (after the split, packing and rows with nothing to learn). */
async function trainRowsOf(config: TrainConfig, folder: ModelFolder): Promise<number> {
  const key = await rowsKey(config, folder);
  if (last?.key === key) return last.trainRows;
  const tokenizer = await ModelTokenizer.load(folder.dir);
  const { train } = await loadRunData(config, tokenizer, folder);
  last = { key, trainRows: train.length };
  return train.length;
}

/**
 * The run's optimizer steps; null when they cannot be counted (the data
 * cannot be read: the run would refuse it, and the Data page says why).
 */
export async function plannedSteps(config: TrainConfig, folder: ModelFolder): Promise<number | null> {
  const counts = { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum };
  if (config.steps !== null) return totalSteps(0, counts);
  try {
    return totalSteps(await trainRowsOf(config, folder), counts);
  } catch {
    // a file that cannot be read or tokenized: no count, so no warning that needs one
    return null;
  }
}
