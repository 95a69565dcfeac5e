// Datasets already on disk in the Hugging Face hub cache: the `datasets`
// library and `hf download --repo-type dataset` keep a dataset's files as
// the hub serves them in <cache>/datasets--{org}--{name}/snapshots/<commit>/
// (refs/main names the current commit), the same layout models have
// (electron/models/hf-cache.ts). A dataset path that is such a repo folder,
// or its snapshots folder, stands for the snapshot refs/main names (or the
// only one); a repo id "org/name" that is no path, for that dataset in the
// cache. Nothing is ever downloaded.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HUB_CACHE_RULE, hubCacheDir, looksLikeRepoId } from '../../models/hf-cache.js';
import { DataError } from '../../training/data.js';

const PREFIX = 'datasets--';
/** A value that names a data file ("org/rows.jsonl"): a path, never a repo id. */
const DATA_NAME = /\.(jsonl|ndjson|json|csv|tsv|tab|txt|text|md|parquet|gz|zst)$/i;

export interface CachedDataset {
  repoId: string;
  /** the snapshots/<commit> folder: the dataset's files */
  snapshot: string;
  revision: string;
  how: 'refs/main' | 'the only snapshot';
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function advice(repoId: string): string {
  return `\`hf download ${repoId} --repo-type dataset\``;
}

/** "datasets--org--name" -> "org/name"; null for any other name. */
function repoIdOf(folder: string): string | null {
  if (!folder.startsWith(PREFIX) || folder.length === PREFIX.length) return null;
  return folder.slice(PREFIX.length).split('--').join('/');
}

/** The snapshot a datasets--org--name folder stands for (a DataError when it cannot say). */
function chooseSnapshot(repoDir: string, repoId: string): CachedDataset {
  const snapshots = join(repoDir, 'snapshots');
  const there = isDir(snapshots) ? readdirSync(snapshots).filter((n) => isDir(join(snapshots, n))).sort() : [];
  const ref = join(repoDir, 'refs', 'main');
  if (existsSync(ref)) {
    const revision = readFileSync(ref, 'utf8').trim();
    if (there.includes(revision)) return { repoId, snapshot: join(snapshots, revision), revision, how: 'refs/main' };
    throw new DataError(`${ref}: names revision ${revision}, but ${join(snapshots, revision)} is not there (the download did not finish, or the snapshot was deleted); fetch it with ${advice(repoId)}${there.length ? `, or give one of the snapshots there as the data: ${there.map((n) => join(snapshots, n)).join(', ')}` : ''}`);
  }
  if (there.length === 1) return { repoId, snapshot: join(snapshots, there[0]), revision: there[0], how: 'the only snapshot' };
  if (there.length === 0) throw new DataError(`${repoDir}: is a Hugging Face cache folder with no snapshot (the download did not finish); fetch the dataset with ${advice(repoId)}`);
  throw new DataError(`${repoDir}: has ${there.length} snapshots and no refs/main to say which is current; give the one you mean as the data: ${there.map((n) => join(snapshots, n)).join(', ')}`);
}

/** Whether `path` is a folder a cached dataset stands for (cachedDatasetOfFolder would resolve it). */
export function isCacheRepoFolder(path: string): boolean {
  const dir = resolve(path);
  if (!isDir(dir)) return false;
  const name = basename(dir);
  return (repoIdOf(name) !== null && isDir(join(dir, 'snapshots'))) || (name === 'snapshots' && repoIdOf(basename(dirname(dir))) !== null);
}

/** The cached dataset a folder stands for (its repo folder, or that folder's snapshots/), or null for any other path. */
export function cachedDatasetOfFolder(dir: string): CachedDataset | null {
  const name = basename(dir);
  if (repoIdOf(name) && isDir(join(dir, 'snapshots'))) return chooseSnapshot(dir, repoIdOf(name)!);
  const parent = dirname(dir);
  if (name === 'snapshots' && repoIdOf(basename(parent))) return chooseSnapshot(parent, repoIdOf(basename(parent))!);
  return null;
}

/**
 * A data value that names a dataset in the cache -> the snapshot: a repo
 * folder or its snapshots/ (cachedDatasetOfFolder), or a repo id "org/name"
 * that is not a path. Null for anything else (the reader opens it as it is).
 */
export function resolveCachedDataset(value: string, env: NodeJS.ProcessEnv = process.env): CachedDataset | null {
  const path = resolve(value);
  if (existsSync(path)) return isDir(path) ? cachedDatasetOfFolder(path) : null;
  // a mistyped path, not a repo id: a data file's name, a relative path, or a folder that is there
  if (!value.includes('/') || !looksLikeRepoId(value) || value.startsWith('.') || DATA_NAME.test(value) || existsSync(dirname(path))) return null;
  const repoDir = join(hubCacheDir(env), PREFIX + value.split('/').join('--'));
  if (!isDir(repoDir)) {
    throw new DataError(`${value}: no such file or folder (${path}), and no dataset ${value} in the Hugging Face cache (looked for ${repoDir}; the cache folder comes from ${HUB_CACHE_RULE}). Nothing is downloaded: fetch it first with ${advice(value)}, or give the data file or folder`);
  }
  return chooseSnapshot(repoDir, value);
}

/** The line a command or a report says about what it resolved. */
export function cachedDatasetNote(d: CachedDataset): string {
  return `using the dataset ${d.repoId} at revision ${d.revision.slice(0, 12)} (${d.how}): ${d.snapshot}`;
}
