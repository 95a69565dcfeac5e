// Writing a checkpoint so that a kill at any instant leaves either the
// complete checkpoint or none: every file goes into a temp folder beside the
// target and is fsynced, the folder is renamed into place, and the COMPLETE
// marker (sizes and hashes of every file) is written last. Resume trusts a
// folder only when its marker matches its files.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { NativeEngine } from '../engine/native.js';
import { saveFullModel } from '../export/model-folder.js';
import { writeFileAtomic, writeFolderAtomic } from '../files/atomic.js';
import { makeFolder } from '../files/make-folder.js';
import type { ModelFolder } from '../models/folder.js';
import { saveAdapterFolder } from '../training/adapter-files.js';
import type { AdapterLayout } from '../adapters/layout.js';
import { PREFIX_ENCODER_FILE, writePrefixEncoderFile } from './prefix-encoder-file.js';
import { CHECKPOINT_VERSION, COMPLETE_MARKER, MARKER_FORMAT, OPTIMIZER_FILE, TRAINER_STATE_FILE, type CompleteMarker, type TrainerState } from './checkpoint-format.js';
import { crashPoint } from './fault-injection.js';
import { runPaths } from './layout.js';
import { writeOptimizerFile } from './optimizer-file.js';
import { fileSha256 } from '../files/sha256.js';

export interface CheckpointSource {
  engine: NativeEngine;
  folder: ModelFolder;
  /** the adapter trained (LoRA, prompt or prefix tuning); null for full fine-tuning */
  layout: AdapterLayout | null;
  /** recorded in adapter_config.json (base_model_name_or_path, and revision: a cache snapshot's commit) */
  baseModel: string;
  baseRevision?: string | null;
  state: TrainerState;
}

export interface WrittenCheckpoint {
  step: number;
  dir: string;
  bytes: number;
  seconds: number;
}


/** Size and hash of every file of a (flat) folder. */
export async function describeFiles(dir: string): Promise<CompleteMarker['files']> {
  const files: CompleteMarker['files'] = {};
  for (const name of (await readdir(dir)).sort()) {
    const info = await stat(join(dir, name));
    if (!info.isFile()) continue;
    files[name] = { bytes: info.size, sha256: await fileSha256(join(dir, name)) };
  }
  return files;
}

/** fsync every file of a folder: copies (tokenizer files of a full model) are not synced by their writer. */
async function syncFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const h = await open(join(dir, name), 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }
}

export async function writeCheckpoint(runDir: string, source: CheckpointSource): Promise<WrittenCheckpoint> {
  const started = performance.now();
  const { engine, folder, layout, state } = source;
  const paths = runPaths(runDir);
  await makeFolder(paths.checkpoints);
  const target = paths.checkpoint(state.step);
  let files: CompleteMarker['files'] = {};
  await writeFolderAtomic(
    target,
    async (temp) => {
      if (layout) await saveAdapterFolder(temp, { engine, spec: folder.spec, layout, baseModel: source.baseModel, baseRevision: source.baseRevision ?? null, keepOtherFiles: true });
      else await saveFullModel(engine, folder, temp);
      // The adapter of prefix tuning with projection is the folded table; resume needs the embedding and MLP.
      if (layout?.kind === 'prefix' && layout.prefix.projection) await writePrefixEncoderFile(join(temp, PREFIX_ENCODER_FILE), engine);
      await writeOptimizerFile(join(temp, OPTIMIZER_FILE), engine.getOptimizerState());
      await writeFileAtomic(join(temp, TRAINER_STATE_FILE), JSON.stringify(state, null, 2) + '\n');
      await syncFiles(temp);
      files = await describeFiles(temp);
      crashPoint('checkpoint-files', state.step);
    },
    // A leftover folder of this step (incomplete, from a killed session) is replaced.
    { overwrite: true },
  );
  crashPoint('checkpoint-renamed', state.step);
  const marker: CompleteMarker = { format: MARKER_FORMAT, version: CHECKPOINT_VERSION, step: state.step, written_at: new Date().toISOString(), files };
  await writeFileAtomic(join(target, COMPLETE_MARKER), JSON.stringify(marker, null, 2) + '\n');
  crashPoint('checkpoint-done', state.step);
  const bytes = Object.values(files).reduce((n, f) => n + f.bytes, 0);
  return { step: state.step, dir: target, bytes, seconds: (performance.now() - started) / 1000 };
}
