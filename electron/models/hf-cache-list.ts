// The models in the Hugging Face hub cache, one entry per snapshot (the
// revisions on disk), with their size and whether this app can open them:
// what the Model page offers next to the recent folders. Only reads the
// disk (stat and small JSON files); never the weights, never the network.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readModelConfig } from './config.js';
import { downloadAdvice, hubCacheDir, incompleteMessage, interruptedDownloadNote, listSnapshots, missingFiles, repoIdOfFolder, type SnapshotInfo } from './hf-cache.js';

export interface CachedModel {
  /** "org/name" */
  repoId: string;
  /** the models--org--name folder */
  repoDir: string;
  /** the snapshot folder to open as the model (null: the repo has no snapshot) */
  snapshot: string | null;
  /** the commit hash of the snapshot */
  revision: string | null;
  /** the refs naming this revision, e.g. ['main'] */
  refs: string[];
  /** when the snapshot was downloaded, ms since the epoch */
  modifiedMs: number | null;
  /** bytes of the snapshot's files, each blob once */
  bytes: number;
  /** opens as a model here: config.json of a supported architecture, safetensors weights all there, tokenizer.json */
  usable: boolean;
  /** why it cannot be opened (null when usable) */
  reason: string | null;
}

export interface CachedModelList {
  /** the cache folder looked in (HF_HUB_CACHE, HF_HOME/hub, ...) */
  cacheDir: string;
  /** whether that folder exists */
  exists: boolean;
  /** by repo id; a repo's snapshots newest first */
  models: CachedModel[];
}

/** Every file of a snapshot (symlinks followed), as [path inside, size, identity of the content]. */
async function snapshotFiles(dir: string, prefix = ''): Promise<{ file: string; size: number; blob: string }[]> {
  const out: { file: string; size: number; blob: string }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      out.push(...(await snapshotFiles(path, `${prefix}${e.name}/`)));
      continue;
    }
    let info;
    try {
      info = await stat(path); // follows the symlink to its blob
    } catch {
      continue; // a dangling symlink: missingFiles names it
    }
    if (info.isDirectory()) out.push(...(await snapshotFiles(path, `${prefix}${e.name}/`)));
    else if (info.isFile()) out.push({ file: `${prefix}${e.name}`, size: info.size, blob: `${info.dev}:${info.ino}` });
  }
  return out;
}

/** Why a complete snapshot cannot be opened as a causal LM here, or null when it can. */
async function whyNotOpenable(snapshot: string, files: Set<string>, repoId: string, interrupted: string | null): Promise<string | null> {
  const unfinished = interrupted === null ? '' : ` ${interrupted}`;
  // the weights first: a GGUF repo has no config.json either, and "only GGUF weights" is the useful answer
  const hasSafetensors = files.has('model.safetensors') || files.has('model.safetensors.index.json');
  if (!hasSafetensors) {
    const names = [...files];
    if (names.some((f) => /(^|\/)pytorch_model.*\.bin$/.test(f) || f.endsWith('.bin.index.json'))) return `only PyTorch .bin weights; this app reads safetensors (download the model's .safetensors files, or convert the checkpoint).${unfinished}`;
    if (names.some((f) => f.endsWith('.gguf'))) return `only GGUF weights (.gguf, for llama.cpp); this app reads the transformers safetensors files.${unfinished}`;
    if (names.some((f) => f.endsWith('.safetensors'))) return `safetensors files, but neither model.safetensors nor model.safetensors.index.json (an adapter or another library's layout).${unfinished}`;
    return `no weights (model.safetensors or model.safetensors.index.json) in the snapshot: only part of the model was downloaded.${unfinished || ` Fetch it with ${downloadAdvice(repoId)}.`}`;
  }
  if (!files.has('config.json')) return `no config.json in the snapshot: not a transformers model, or only part of it was downloaded.${unfinished}`;
  if (!files.has('tokenizer.json')) return 'no tokenizer.json (this app needs the fast tokenizer file).';
  try {
    await readModelConfig(join(snapshot, 'config.json'));
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

async function describeSnapshot(repoId: string, repoDir: string, s: SnapshotInfo, interrupted: string | null): Promise<CachedModel> {
  const files = await snapshotFiles(s.dir);
  // a blob two files share (or two names of one file) counts once, as on disk
  const blobs = new Map(files.map((f) => [f.blob, f.size]));
  const bytes = [...blobs.values()].reduce((a, b) => a + b, 0);
  const missing = await missingFiles(s.dir);
  const reason = missing.length
    ? incompleteMessage({ repoId, snapshot: s.dir }, missing)
    : await whyNotOpenable(s.dir, new Set(files.map((f) => f.file)), repoId, interrupted);
  return { repoId, repoDir, snapshot: s.dir, revision: s.revision, refs: s.refs, modifiedMs: s.modifiedMs, bytes, usable: reason === null, reason };
}

/** The models in the cache (datasets--* and spaces--* are not models and are skipped). */
export async function listCachedModels(env: NodeJS.ProcessEnv = process.env): Promise<CachedModelList> {
  const cacheDir = hubCacheDir(env);
  let names: string[];
  try {
    names = (await readdir(cacheDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return { cacheDir, exists: false, models: [] };
  }
  const models: CachedModel[] = [];
  for (const name of names) {
    const repoId = repoIdOfFolder(name);
    if (repoId === null) continue;
    const repoDir = join(cacheDir, name);
    const interrupted = await interruptedDownloadNote(repoDir, repoId);
    const snapshots = await listSnapshots(repoDir);
    if (snapshots.length === 0) {
      models.push({
        repoId, repoDir, snapshot: null, revision: null, refs: [], modifiedMs: null, bytes: 0, usable: false,
        reason: `no snapshot: the download did not finish. Fetch it with ${downloadAdvice(repoId)}.`,
      });
      continue;
    }
    for (const s of snapshots) models.push(await describeSnapshot(repoId, repoDir, s, interrupted));
  }
  models.sort((a, b) => a.repoId.localeCompare(b.repoId));
  return { cacheDir, exists: true, models };
}
