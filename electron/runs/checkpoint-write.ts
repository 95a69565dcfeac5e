// Writing a checkpoint so that a kill at any instant leaves either the
// complete checkpoint or none: every file goes into a temp folder beside the
// target and is fsynced, the folder is renamed into place, and the COMPLETE
// marker (sizes and hashes of every file) is written last. Resume trusts a
// folder only when its marker matches its files.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { NativeEngine, OptimizerState } from '../engine/native.js';
import { fullModelFileBytes, saveFullModel } from '../export/model-folder.js';
import { writeFileAtomic, writeFolderAtomic } from '../files/atomic.js';
import { makeFolder } from '../files/make-folder.js';
import type { ModelFolder } from '../models/folder.js';
import { adapterFileBytes, saveAdapterFolder } from '../training/adapter-files.js';
import { PREFIX_ENCODER_TENSORS, type AdapterLayout } from '../adapters/layout.js';
import { PREFIX_ENCODER_FILE, writePrefixEncoderFile } from './prefix-encoder-file.js';
import { CHECKPOINT_VERSION, COMPLETE_MARKER, MARKER_FORMAT, OPTIMIZER_FILE, TRAINER_STATE_FILE, type CompleteMarker, type TrainerState } from './checkpoint-format.js';
import { crashPoint } from './fault-injection.js';
import { runPaths } from './layout.js';
import { writeOptimizerFile } from './optimizer-file.js';
import { fileSha256 } from '../files/sha256.js';
import { safetensorsFileSize } from '../safetensors/write.js';
import { checkpointBytesOf, sideFileBytes } from './disk-need.js';

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

/**
 * About the bytes of a checkpoint's files, for the message when its disk
 * cannot take them: the adapter's file (or the full model's, with the side
 * files it copies), the optimizer's and prefix tuning's encoder file exactly,
 * the small files within disk-need.ts's allowance (checkpointBytesOf, which
 * counts a checkpoint before the run starts the same way).
 */
async function checkpointBytes(source: CheckpointSource, optimizer: OptimizerState): Promise<number> {
  const { engine, folder, layout } = source;
  let weights: number;
  if (layout) {
    weights = adapterFileBytes(folder.spec, layout);
  } else {
    weights = fullModelFileBytes(folder.spec) + sideFileBytes(folder.dir);
  }
  // (the tensor names and metadata as optimizer-file.ts and prefix-encoder-file.ts write them: only the headers' length depends on them)
  const moments = safetensorsFileSize(optimizer.tensors.flatMap((t) => [
    { name: `${t.name}.exp_avg`, dtype: 'F32' as const, shape: [t.m.length] },
    { name: `${t.name}.exp_avg_sq`, dtype: 'F32' as const, shape: [t.v.length] },
  ]), { format: 'peft-studio-optimizer', step: String(optimizer.step) });
  const shapes = new Map(engine.parameters().map((p) => [p.name, p.shape]));
  const encoder = layout?.kind === 'prefix' && layout.prefix.projection
    ? safetensorsFileSize(PREFIX_ENCODER_TENSORS.map((name) => ({ name, dtype: 'F32' as const, shape: shapes.get(name) ?? [0] })), { format: 'peft-studio-prefix-encoder' })
    : 0;
  return checkpointBytesOf({ resultBytes: weights, stateBytes: moments + encoder });
}

export async function writeCheckpoint(runDir: string, source: CheckpointSource): Promise<WrittenCheckpoint> {
  const started = performance.now();
  const { engine, folder, layout, state } = source;
  const paths = runPaths(runDir);
  await makeFolder(paths.checkpoints);
  const target = paths.checkpoint(state.step);
  let files: CompleteMarker['files'] = {};
  const optimizer = engine.getOptimizerState();
  await writeFolderAtomic(
    target,
    async (temp) => {
      if (layout) await saveAdapterFolder(temp, { engine, spec: folder.spec, layout, baseModel: source.baseModel, baseRevision: source.baseRevision ?? null, keepOtherFiles: true });
      else await saveFullModel(engine, folder, temp);
      // The adapter of prefix tuning with projection is the folded table; resume needs the embedding and MLP.
      if (layout?.kind === 'prefix' && layout.prefix.projection) await writePrefixEncoderFile(join(temp, PREFIX_ENCODER_FILE), engine);
      await writeOptimizerFile(join(temp, OPTIMIZER_FILE), optimizer);
      await writeFileAtomic(join(temp, TRAINER_STATE_FILE), JSON.stringify(state, null, 2) + '\n');
      await syncFiles(temp);
      files = await describeFiles(temp);
      crashPoint('checkpoint-files', state.step);
    },
    // A leftover folder of this step (incomplete, from a killed session) is replaced; `bytes` words a full disk.
    { overwrite: true, bytes: await checkpointBytes(source, optimizer) },
  );
  crashPoint('checkpoint-renamed', state.step);
  const marker: CompleteMarker = { format: MARKER_FORMAT, version: CHECKPOINT_VERSION, step: state.step, written_at: new Date().toISOString(), files };
  await writeFileAtomic(join(target, COMPLETE_MARKER), JSON.stringify(marker, null, 2) + '\n');
  crashPoint('checkpoint-done', state.step);
  const bytes = Object.values(files).reduce((n, f) => n + f.bytes, 0);
  return { step: state.step, dir: target, bytes, seconds: (performance.now() - started) / 1000 };
}
