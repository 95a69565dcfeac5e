// Finding the checkpoint a run continues from: the newest folder whose
// COMPLETE marker is valid and matches every file it lists. A newer folder that
// fails (killed mid-write, truncated or altered file) is reported with the
// reason and passed over for the one before it.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHECKPOINT_VERSION,
  COMPLETE_MARKER,
  MARKER_FORMAT,
  OPTIMIZER_FILE,
  TRAINER_STATE_FILE,
  TRAINER_STATE_FORMAT,
  type CompleteMarker,
  type TrainerState,
} from './checkpoint-format.js';
import { fileSha256 } from '../files/sha256.js';
import { checkpointStep, runPaths } from './layout.js';

export interface CheckpointRef {
  step: number;
  dir: string;
}

export type CheckpointCheck = { ok: true; state: TrainerState } | { ok: false; reason: string };

/** Checkpoint folders of a run, newest first (complete or not). */
export async function listCheckpoints(runDir: string): Promise<CheckpointRef[]> {
  const root = runPaths(runDir).checkpoints;
  let names: string[];
  try {
    names = await readdir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: CheckpointRef[] = [];
  for (const name of names) {
    const step = checkpointStep(name);
    if (step !== null) out.push({ step, dir: join(root, name) });
  }
  return out.sort((a, b) => b.step - a.step);
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8'));
}

/** Checks one checkpoint folder against its marker, file by file. */
export async function checkCheckpoint(ref: CheckpointRef): Promise<CheckpointCheck> {
  let marker: CompleteMarker;
  try {
    marker = (await readJson(join(ref.dir, COMPLETE_MARKER))) as CompleteMarker;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, reason: missing ? `no ${COMPLETE_MARKER} marker (the write did not finish)` : `the ${COMPLETE_MARKER} marker is damaged` };
  }
  if (marker?.format !== MARKER_FORMAT || marker.version !== CHECKPOINT_VERSION || marker.step !== ref.step || typeof marker.files !== 'object' || marker.files === null) {
    return { ok: false, reason: `the ${COMPLETE_MARKER} marker is not a version-${CHECKPOINT_VERSION} marker of step ${ref.step}` };
  }
  const names = Object.keys(marker.files);
  const weights = names.includes('adapter_model.safetensors') || names.includes('model.safetensors');
  if (!weights || !names.includes(OPTIMIZER_FILE) || !names.includes(TRAINER_STATE_FILE)) {
    return { ok: false, reason: 'the marker does not list the weights, the optimizer state and the trainer state' };
  }
  for (const name of names) {
    const want = marker.files[name];
    const file = join(ref.dir, name);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      return { ok: false, reason: `${name} is missing` };
    }
    if (size !== want.bytes) return { ok: false, reason: `${name} has ${size} bytes, the marker says ${want.bytes} (truncated or altered)` };
    if ((await fileSha256(file)) !== want.sha256) return { ok: false, reason: `${name} does not match its sha256 in the marker (altered or damaged)` };
  }
  let state: TrainerState;
  try {
    state = (await readJson(join(ref.dir, TRAINER_STATE_FILE))) as TrainerState;
  } catch {
    return { ok: false, reason: `${TRAINER_STATE_FILE} is not valid JSON` };
  }
  if (state?.format !== TRAINER_STATE_FORMAT || state.version !== CHECKPOINT_VERSION || state.step !== ref.step) {
    return { ok: false, reason: `${TRAINER_STATE_FILE} is not the trainer state of step ${ref.step}` };
  }
  return { ok: true, state };
}

export interface ResumePoint {
  /** null: no usable checkpoint, the run starts over from step 0 */
  checkpoint: (CheckpointRef & { state: TrainerState }) | null;
  /** newer folders that failed the check, with why */
  rejected: (CheckpointRef & { reason: string })[];
}

export async function newestValidCheckpoint(runDir: string): Promise<ResumePoint> {
  const rejected: ResumePoint['rejected'] = [];
  for (const ref of await listCheckpoints(runDir)) {
    const check = await checkCheckpoint(ref);
    if (check.ok) return { checkpoint: { ...ref, state: check.state }, rejected };
    rejected.push({ ...ref, reason: check.reason });
  }
  return { checkpoint: null, rejected };
}
