// checkRun's time estimate: the same estimate `train` prints before it starts
// (electron/training/time-estimate.ts), on the training and eval rows the run
// would really have (loadRunData, THE place a run reads its data). Reading the data
// means reading every file (the token cache, data/token-cache.ts, spares
// tokenizing them again, not reading and hashing them), so the last rows read
// are kept while the files and the settings that read them are unchanged (the
// form re-checks after every edit; most edits, lr or rank, leave the rows as
// they were). Those rows are the service's one copy: the planned steps
// (planned-steps.ts) count them too, so an edit reads the data once.
import { stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { RunCheck } from '../api/contract.js';
import { datasetFiles, type DatasetRole } from '../data/containers/dataset-folder.js';
import type { NativeAddon } from '../engine/native.js';
import type { ModelFolder } from '../models/folder.js';
import { ModelTokenizer, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from '../models/tokenizer.js';
import type { TrainConfig } from '../training/config.js';
import { rowShapes, type RowShape } from '../training/fit-alternatives.js';
import type { Example } from '../training/data.js';
import { loadRunData, runVirtualTokens } from '../training/run.js';
import { describeTime, estimateRunTime, safeRunTimeEstimate } from '../training/time-estimate.js';
import { totalSteps } from '../training/trainer.js';

export interface RunRows {
  train: Example[];
  eval: Example[];
}

/** The last read: its rows, or the error the run would refuse them with (kept too: the form re-checks a refused run after every edit). */
let last: { key: string; rows: RunRows; error: null } | { key: string; rows: null; error: Error } | null = null;

/** The files a dataset path reads (a folder's, each by itself: a shard edited in place changes its time, not the folder's). */
function dataFilesOf(path: string, role: DatasetRole): string[] {
  try {
    return [path, ...datasetFiles(path, role, false).files.filter((f) => f !== path)];
  } catch {
    return [path]; // the run will refuse it, and say why
  }
}

/** Everything loadRunData's rows depend on: the files (by size and time) and the settings that read them. */
async function rowsKey(config: TrainConfig, folder: ModelFolder): Promise<string> {
  // tokenizer_config.json holds the chat template (how chat rows tokenize) and config.json the model's own limits
  const files = [...dataFilesOf(config.data, 'train'), join(folder.dir, TOKENIZER_FILE), join(folder.dir, TOKENIZER_CONFIG_FILE), join(folder.dir, 'config.json'),
    ...(config.evalData ? dataFilesOf(config.evalData, 'eval') : [])];
  // an absent optional file is part of the key too
  const stamps = await Promise.all(files.map((f) => stat(f).then((s) => [s.size, s.mtimeMs], () => null)));
  const { dataFormat, seqLen, completionOnly, pack, evalSplit, seed, evalData, method } = config;
  // the method and its virtual tokens too: they take positions from the rows' sequence length (loadRunData)
  return JSON.stringify([folder.dir, files, stamps, dataFormat, seqLen, completionOnly, pack, evalSplit, seed, evalData, method, runVirtualTokens(config)]);
}

/**
 * The training and eval rows a run of `config` would have: the last ones read
 * while nothing they depend on changed. Throws what loadRunData throws (the
 * same error object again while nothing changed).
 */
export async function runRows(config: TrainConfig, folder: ModelFolder): Promise<RunRows> {
  const key = await rowsKey(config, folder);
  if (last?.key !== key) {
    try {
      const { train, eval: evalRows } = await loadRunData(config, await ModelTokenizer.load(folder.dir), folder);
      last = { key, rows: { train, eval: evalRows }, error: null };
    } catch (e) {
      // a bug is not the data's answer: not kept
      if (!(e instanceof Error) || e instanceof TypeError || e instanceof ReferenceError) throw e;
      last = { key, rows: null, error: e };
    }
  }
  if (last.error) throw last.error;
  return last.rows;
}

/**
 * Each training row as the run would read it (its length, where its trained
 * tokens start); null when the rows are packed (a shorter sequence packs the
 * documents again: it cuts only a document longer than it, which a packed
 * row's length does not tell).
 */
export function runRowShapes(config: TrainConfig, rows: RunRows): RowShape[] | null {
  return config.pack ? null : rowShapes(rows.train);
}

/** The run's time over its rows (runRows) as RunCheck carries it; null when the estimate cannot be made. */
export function runTimeCheck(addon: NativeAddon, config: TrainConfig, folder: ModelFolder, gpu: boolean, rows: RunRows): RunCheck['time'] {
  const { train } = rows;
  const steps = totalSteps(train.length, { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum });
  const estimate = safeRunTimeEstimate(() => estimateRunTime(addon.ops, { gpu, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', threads: config.threads },
    folder.spec, config, train, steps, rows.eval));
  if (!estimate) return null;
  return { steps, tokens: estimate.work.tokens, seconds: estimate.time.seconds, text: describeTime(estimate.time, config) };
}
