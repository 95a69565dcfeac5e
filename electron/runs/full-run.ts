// A full fine-tuning run (train --method full) leaves a complete model folder,
// not an adapter: its run folder (or a checkpoints/step-N folder of it) given
// where an adapter is expected gets one message that says what it is and how
// to use it, the same words export, merge and generate use.
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CHECKPOINTS_DIR, checkpointStep, RUN_FILE } from './layout.js';

/** The run folder `dir` belongs to: itself (run.json inside) or, for a checkpoints/step-N folder, its run; null otherwise. */
export async function runFolderOf(dir: string): Promise<string | null> {
  const abs = resolve(dir);
  const candidates = [abs];
  if (checkpointStep(basename(abs)) !== null && basename(dirname(abs)) === CHECKPOINTS_DIR) candidates.push(dirname(dirname(abs)));
  for (const candidate of candidates) {
    try {
      await readFile(join(candidate, RUN_FILE));
      return candidate;
    } catch {
      // not a run folder
    }
  }
  return null;
}

async function runMethod(runDir: string): Promise<unknown> {
  try {
    const run = JSON.parse(await readFile(join(runDir, RUN_FILE), 'utf8')) as { config?: { method?: unknown } } | null;
    return run?.config?.method;
  } catch {
    return undefined; // a damaged run.json is reported by whoever reads it properly
  }
}

/**
 * When `dir` (or the run it is a checkpoint of) is a full fine-tuning run:
 * the message for a user who gave it as an adapter; else null.
 * `flag` is how the caller names the adapter ("--adapter", "RUN_OR_ADAPTER"),
 * `task` what could not be done with it ("there is no adapter to export").
 */
export async function fullRunAsAdapterMessage(dir: string, flag = '--adapter', task = 'it has no adapter to apply'): Promise<string | null> {
  const runDir = await runFolderOf(dir);
  if (runDir === null || (await runMethod(runDir)) !== 'full') return null;
  const abs = resolve(dir);
  const what = runDir === abs ? 'is a full fine-tuning run' : `is a checkpoint of the full fine-tuning run ${runDir}`;
  return `${abs}: ${what}; ${task}. Its folder already is a Hugging Face model (config.json + model.safetensors): use it as the model (--model ${abs}) instead of ${flag}`;
}
