// The run folder (`train --out DIR`), the source of truth of a run: the UI and
// the CLI read it, and nothing important lives only in a process's memory.
//   DIR/run.json               settings, resolved values, status, pid, times
//   DIR/metrics.jsonl          one row per optimizer step, plus eval rows
//   DIR/checkpoints/step-N/    adapter (or model), optimizer, scheduler, RNG,
//                              data position, COMPLETE marker written last
//   DIR/run.lock               held by the process that trains in DIR
//   DIR/adapter_config.json, adapter_model.safetensors   the final adapter
//                              (full fine-tuning: a complete model folder)
//   DIR/best/                  --keep-best: the adapter (model) of the lowest
//                              eval loss, with best.json (best-adapter.ts)
import { basename, dirname, join } from 'node:path';

export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.jsonl';
export const CHECKPOINTS_DIR = 'checkpoints';
export const LOCK_FILE = 'run.lock';

const CHECKPOINT_NAME = /^step-(\d+)$/;

export function checkpointName(step: number): string {
  return `step-${step}`;
}

/** The step of a checkpoint folder name, or null for any other name. */
export function checkpointStep(name: string): number | null {
  const m = CHECKPOINT_NAME.exec(name);
  return m ? Number(m[1]) : null;
}

/** The run folder a checkpoints/step-N folder would belong to (by its path alone), or null for any other path. */
export function runDirOfCheckpoint(dir: string): { runDir: string; step: number } | null {
  const step = checkpointStep(basename(dir));
  if (step === null || basename(dirname(dir)) !== CHECKPOINTS_DIR) return null;
  return { runDir: dirname(dirname(dir)), step };
}

export interface RunPaths {
  dir: string;
  runFile: string;
  metrics: string;
  checkpoints: string;
  lock: string;
  checkpoint(step: number): string;
}

export function runPaths(dir: string): RunPaths {
  return {
    dir,
    runFile: join(dir, RUN_FILE),
    metrics: join(dir, METRICS_FILE),
    checkpoints: join(dir, CHECKPOINTS_DIR),
    lock: join(dir, LOCK_FILE),
    checkpoint: (step) => join(dir, CHECKPOINTS_DIR, checkpointName(step)),
  };
}
