// What a model folder in the Hugging Face cache is, beyond its path: the repo
// and revision its snapshot folder names, and its weight files' blobs. In
// the cache a weight file links to blobs/<sha256 of its content> (the hub's
// LFS etag), so the blob names are the weights' identity for the price of a
// readlink. A run records this when its model comes from the cache: a resume
// then refuses another revision whose weights differ (the model fingerprint
// covers shapes and the tokenizer, not the weights), and adapters name the
// repo id as their base, as PEFT writes it, so they load anywhere.
import { readdirSync, readlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO_FOLDER_PREFIX, repoIdOfFolder } from './hf-cache.js';

export interface CacheSnapshotIdentity {
  repoId: string;
  /** the snapshot folder's name: the commit */
  revision: string;
  /** weight file -> the blob it links to (empty for a cache of copies, without links) */
  weights: Record<string, string>;
}

const WEIGHT_FILE = /\.safetensors$/;

/** The identity of a cache snapshot folder (models--org--name/snapshots/<commit>), or null for any other folder. */
export function cacheSnapshotIdentity(dir: string): CacheSnapshotIdentity | null {
  const repoFolder = basename(dirname(dirname(dir)));
  if (basename(dirname(dir)) !== 'snapshots' || !repoFolder.startsWith(REPO_FOLDER_PREFIX)) return null;
  const repoId = repoIdOfFolder(repoFolder);
  if (repoId === null) return null;
  const weights: Record<string, string> = {};
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  for (const name of names.filter((n) => WEIGHT_FILE.test(n)).sort()) {
    try {
      weights[name] = basename(readlinkSync(join(dir, name)));
    } catch {
      // a plain copy (no symlinks): no cheap identity for this file
    }
  }
  return { repoId, revision: basename(dir), weights };
}

/**
 * What an adapter names as its base: for a cache snapshot the repo id
 * (base_model_name_or_path) and the commit (revision), as PEFT writes them,
 * so it loads anywhere and on the very weights it was trained on; else the
 * folder, and no revision.
 */
export function adapterBase(dir: string): { baseModel: string; baseRevision: string | null } {
  const id = cacheSnapshotIdentity(dir);
  return id ? { baseModel: id.repoId, baseRevision: id.revision } : { baseModel: dir, baseRevision: null };
}

/**
 * Why a resumed run's model (a cache snapshot) is not the one it started with:
 * weights whose blobs differ. Null when they are the same, or when either
 * side has no blob names to compare.
 */
export function cacheWeightsProblem(recorded: CacheSnapshotIdentity, now: CacheSnapshotIdentity | null, dir: string): string | null {
  if (now === null || Object.keys(recorded.weights).length === 0 || Object.keys(now.weights).length === 0) return null;
  const same = JSON.stringify(recorded.weights) === JSON.stringify(now.weights);
  if (same) return null;
  return `${dir}: holds other weights than the model this run started with (${recorded.repoId} at revision ${recorded.revision.slice(0, 12)}; this is revision ${now.revision.slice(0, 12)}, whose weight files differ). ` +
    `Resume with --model set to that revision's snapshot (${join(dirname(dir), recorded.revision)}), or start a new run`;
}
