// How many optimizer steps a run of these settings would take, counted the
// way the run counts them: Steps when set, else the epochs over the training
// rows that loadRunData (THE place a run reads its data) leaves after the
// eval split, packing and dropping rows with nothing to learn. checkRun needs
// it to warn about warmup reaching past the end before the run starts.
//
// Counting epochs means reading the dataset: the rows are the service's one
// copy of the last rows read (run-time.ts runRows), which the time estimate
// uses too, so a form edit reads the data once.
import type { ModelFolder } from '../models/folder.js';
import type { TrainConfig } from '../training/config.js';
import { totalSteps } from '../training/trainer.js';
import { runRows } from './run-time.js';

/**
 * The run's optimizer steps; null when they cannot be counted (the data
 * cannot be read: the run would refuse it, and the Data page says why).
 */
export async function plannedSteps(config: TrainConfig, folder: ModelFolder): Promise<number | null> {
  const counts = { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum };
  if (config.steps !== null) return totalSteps(0, counts);
  try {
    return totalSteps((await runRows(config, folder)).train.length, counts);
  } catch {
    // a file that cannot be read or tokenized: no count, so no warning that needs one
    return null;
  }
}
