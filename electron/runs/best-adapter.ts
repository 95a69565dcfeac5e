// train --keep-best: DIR/best/ holds the adapter (full fine-tuning: the whole
// model folder) of the evaluation with the lowest eval loss so far, in the same
// files as the run's final adapter, so eval / generate / merge / export take
// it as --adapter. DIR/best/best.json says which evaluation it is:
//   { "format": "peft-studio-best", "step": 300, "eval_loss": 1.234 }
// best.json is the one record of what best/ holds (run.json's summary repeats
// it once the run ends). The folder is replaced as a whole (writeFolderAtomic):
// a reader sees the old best or the new one, never half of either.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NativeEngine } from '../engine/native.js';
import type { AdapterLayout } from '../adapters/layout.js';
import { saveFullModel } from '../export/model-folder.js';
import { writeFolderAtomic } from '../files/atomic.js';
import type { ModelFolder } from '../models/folder.js';
import { saveAdapterFolder } from '../training/adapter-files.js';
import { adapterBase } from '../models/cache-snapshot-identity.js';
import type { BestAdapter } from './best-words.js';

export const BEST_DIR = 'best';
export const BEST_FILE = 'best.json';
const BEST_FORMAT = 'peft-studio-best';

export { describeBest, type BestAdapter } from './best-words.js';

export function bestDir(runDir: string): string {
  return join(runDir, BEST_DIR);
}

/** Replaces DIR/best/ with the engine's adapter (or model) of `step`. */
export async function writeBestAdapter(
  runDir: string,
  what: { engine: NativeEngine; folder: ModelFolder; layout: AdapterLayout | null; step: number; evalLoss: number; modelCardNotes?: string },
): Promise<BestAdapter> {
  const dir = bestDir(runDir);
  await writeFolderAtomic(dir, async (temp) => {
    if (what.layout) await saveAdapterFolder(temp, { engine: what.engine, spec: what.folder.spec, layout: what.layout, ...adapterBase(what.folder.dir), keepOtherFiles: true, modelCardNotes: what.modelCardNotes });
    else await saveFullModel(what.engine, what.folder, temp);
    await writeFile(join(temp, BEST_FILE), JSON.stringify({ format: BEST_FORMAT, step: what.step, eval_loss: what.evalLoss }, null, 2) + '\n');
  }, { overwrite: true });
  return { dir, step: what.step, eval_loss: what.evalLoss };
}

/** DIR/best/ as its best.json describes it; null when there is none (or best.json is damaged: then it is not offered). */
export async function readBestAdapter(runDir: string): Promise<BestAdapter | null> {
  const dir = bestDir(runDir);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(dir, BEST_FILE), 'utf8'));
  } catch {
    return null;
  }
  const { format, step, eval_loss } = (json ?? {}) as Record<string, unknown>;
  if (format !== BEST_FORMAT || !Number.isSafeInteger(step) || typeof eval_loss !== 'number' || !Number.isFinite(eval_loss)) return null;
  return { dir, step: step as number, eval_loss };
}

