// Models already on disk in the Hugging Face hub cache, as huggingface_hub
// lays it out (transformers, `hf download` and `huggingface-cli download`
// write it):
//
//   <cache>/models--{org}--{name}/refs/main          the commit hash of "main"
//   <cache>/models--{org}--{name}/snapshots/<commit>/ the files of that revision,
//                                                     usually relative symlinks
//                                                     to ../../blobs/<etag>
//   <cache>/models--{org}--{name}/blobs/<etag>        the content (a download in
//                                                     progress: <etag>.incomplete)
//
// This module turns what a user passes as a model (the repo folder, its
// snapshots folder, or a repo id "org/name") into the snapshot folder that
// holds config.json and the weights. Nothing is ever downloaded: a model that
// is not (completely) there is an error that says how to fetch it.
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

export const REPO_FOLDER_PREFIX = 'models--';
export const REFS_MAIN = join('refs', 'main');
const INCOMPLETE_SUFFIX = '.incomplete';
const INDEX_FILE = 'model.safetensors.index.json';

/** A cache that cannot give the model asked for (incomplete, ambiguous, absent); the message says what to do. */
export class HfCacheError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HfCacheError';
  }
}

/**
 * The hub cache folder, as huggingface_hub finds it: $HF_HUB_CACHE (or its
 * older name $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 */
/** Where hubCacheDir looks, in words (every message and help that names it says it this way). */
export const HUB_CACHE_RULE = 'HF_HUB_CACHE (or HUGGINGFACE_HUB_CACHE), else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = (v: string | undefined) => (v !== undefined && v !== '' ? expandHome(expandVars(v, env)) : null);
  const hub = set(env.HF_HUB_CACHE) ?? set(env.HUGGINGFACE_HUB_CACHE);
  if (hub) return resolve(hub);
  const home = set(env.HF_HOME);
  if (home) return resolve(home, 'hub');
  const xdg = set(env.XDG_CACHE_HOME);
  return resolve(xdg ?? join(homedir(), '.cache'), 'huggingface', 'hub');
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** $VAR and ${VAR} replaced from env (unset ones left as written), as huggingface_hub expands the variables that name its folders. */
function expandVars(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$(?:\{(\w+)\}|(\w+))/g, (whole, braced: string | undefined, bare: string | undefined) => env[braced ?? bare ?? ''] ?? whole);
}

/** "models--org--name" -> "org/name" (null for anything else, e.g. datasets--*). */
export function repoIdOfFolder(folderName: string): string | null {
  if (!folderName.startsWith(REPO_FOLDER_PREFIX)) return null;
  const rest = folderName.slice(REPO_FOLDER_PREFIX.length);
  return rest === '' ? null : rest.split('--').join('/');
}

/** "org/name" -> "models--org--name" (huggingface_hub's repo_folder_name). */
export function repoFolderName(repoId: string): string {
  return REPO_FOLDER_PREFIX + repoId.split('/').join('--');
}

/** What finishes a download of the repo (the new and the older client). */
export function downloadAdvice(repoId: string): string {
  return `\`hf download ${repoId}\` (or \`huggingface-cli download ${repoId}\`)`;
}

/** A repo id as the hub spells one: "name" or "org/name" (letters, digits, -, _, .). */
export function looksLikeRepoId(value: string): boolean {
  return /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/.test(value) && !value.includes('--') && !value.includes('..');
}

/** The snapshot a model value resolves to, and how it was chosen. */
export interface SnapshotChoice {
  repoId: string;
  /** the models--org--name folder */
  repoDir: string;
  /** snapshots/<commit>: the folder to open */
  snapshot: string;
  /** the commit hash (the snapshot folder's name) */
  revision: string;
  /** 'refs/main', or 'the only snapshot' when there is no refs/main */
  how: 'refs/main' | 'the only snapshot';
}

/** One snapshot folder of a repo, with the refs that name it. */
export interface SnapshotInfo {
  revision: string;
  dir: string;
  /** when the snapshot folder was last changed (its download), ms since the epoch */
  modifiedMs: number;
  /** refs/<name> files holding this revision, e.g. ['main'] */
  refs: string[];
}

/** A file of a snapshot that is not (all) there, and why. */
export interface MissingFile {
  /** path inside the snapshot, '/'-separated */
  file: string;
  why: string;
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

async function isDir(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isDirectory() ?? false;
}

async function isFile(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isFile() ?? false;
}

/** Whether `dir` is a cache repo folder: named models--*, or holding snapshots/ next to refs/ or blobs/. */
export async function isCacheRepoFolder(dir: string): Promise<boolean> {
  if (/^models--.+/.test(basename(dir))) return true;
  if (/^(datasets|spaces)--/.test(basename(dir))) return false; // a dataset's or a Space's repo, not a model's
  return (await isDir(join(dir, 'snapshots'))) && ((await isDir(join(dir, 'refs'))) || (await isDir(join(dir, 'blobs'))));
}

/** refs/<name> -> commit, for every ref file (refs/pr/1 included, as "pr/1"). */
async function readRefs(repoDir: string): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${prefix}${e.name}/`);
      else if (e.isFile()) refs.set(`${prefix}${e.name}`, (await readFile(join(dir, e.name), 'utf8')).trim());
    }
  };
  await walk(join(repoDir, 'refs'), '');
  return refs;
}

/** The snapshot folders of a repo, newest first, each with the refs naming it. */
export async function listSnapshots(repoDir: string): Promise<SnapshotInfo[]> {
  const snapshotsDir = join(repoDir, 'snapshots');
  let names: string[];
  try {
    names = (await readdir(snapshotsDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  const refs = await readRefs(repoDir);
  const out: SnapshotInfo[] = [];
  for (const revision of names) {
    const dir = join(snapshotsDir, revision);
    const info = await statOrNull(dir);
    out.push({ revision, dir, modifiedMs: info?.mtimeMs ?? 0, refs: [...refs].filter(([, commit]) => commit === revision).map(([name]) => name).sort() });
  }
  return out.sort((a, b) => b.modifiedMs - a.modifiedMs || a.revision.localeCompare(b.revision));
}

/** "2026-11-29 15:31" in UTC: a snapshot's date in a message. */
function dateOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

function describeSnapshots(snapshots: SnapshotInfo[]): string {
  return snapshots.map((s) => `${s.dir} (downloaded ${dateOf(s.modifiedMs)}${s.refs.length ? `; refs: ${s.refs.join(', ')}` : ''})`).join('; ');
}

/**
 * The snapshot a cache repo folder stands for: the one refs/main names; with
 * no refs/main, the only snapshot. Several and no refs/main, none, or a
 * refs/main naming a snapshot that is not there: an error listing what is.
 */
export async function chooseSnapshot(repoDir: string): Promise<SnapshotChoice> {
  const repoId = repoIdOfFolder(basename(repoDir)) ?? basename(repoDir);
  const snapshots = await listSnapshots(repoDir);
  const refs = await readRefs(repoDir);
  const main = refs.get('main');
  if (main !== undefined) {
    const named = snapshots.find((s) => s.revision === main);
    if (named) return { repoId, repoDir, snapshot: named.dir, revision: named.revision, how: 'refs/main' };
    const there = snapshots.length ? ` Snapshots there: ${describeSnapshots(snapshots)}; pass one of them as the model folder to use it.` : '';
    throw new HfCacheError(`${join(repoDir, REFS_MAIN)}: names revision ${main}, but ${join(repoDir, 'snapshots', main)} does not exist: that revision's download did not finish or its snapshot was deleted. Fetch it with ${downloadAdvice(repoId)}; nothing is downloaded here.${there}`);
  }
  if (snapshots.length === 1) {
    return { repoId, repoDir, snapshot: snapshots[0].dir, revision: snapshots[0].revision, how: 'the only snapshot' };
  }
  if (snapshots.length === 0) {
    throw new HfCacheError(`${repoDir}: is a Hugging Face cache folder with no snapshot in ${join(repoDir, 'snapshots')}: the download did not finish. Fetch the model with ${downloadAdvice(repoId)}; nothing is downloaded here.`);
  }
  throw new HfCacheError(`${repoDir}: has ${snapshots.length} snapshots and no ${REFS_MAIN} to say which is current: ${describeSnapshots(snapshots)}. Pass the snapshot folder you want as the model folder.`);
}

/**
 * The files of a snapshot that are not all there: a symlink to a blob that is
 * missing (a `.incomplete` one: still downloading or interrupted), and a shard
 * model.safetensors.index.json names that the snapshot lacks. Empty when
 * every file is there.
 */
export async function missingFiles(snapshot: string): Promise<MissingFile[]> {
  const missing: MissingFile[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(path, `${prefix}${e.name}/`);
      } else if (e.isSymbolicLink() && !(await statOrNull(path))) {
        // a symlink whose blob is not there; its target's .incomplete twin means the download was cut short
        const target = await readlink(path);
        const blob = resolve(dirname(path), target);
        const partial = await statOrNull(blob + INCOMPLETE_SUFFIX);
        missing.push({
          file: `${prefix}${e.name}`,
          why: partial ? `its blob ${blob} is still ${blob}${INCOMPLETE_SUFFIX} (${partial.size} bytes): the download was interrupted` : `it links to ${blob}, which is missing`,
        });
      }
    }
  };
  await walk(snapshot, '');
  const index = join(snapshot, INDEX_FILE);
  if (!(await isFile(join(snapshot, 'model.safetensors'))) && (await isFile(index))) {
    let map: unknown;
    try {
      map = (JSON.parse(await readFile(index, 'utf8')) as { weight_map?: unknown } | null)?.weight_map;
    } catch {
      map = null; // openModelFolder explains a broken index
    }
    if (map && typeof map === 'object') {
      const shards = [...new Set(Object.values(map as Record<string, unknown>).filter((s): s is string => typeof s === 'string'))].sort();
      for (const shard of shards) {
        if (missing.some((m) => m.file === shard)) continue;
        if (!(await statOrNull(join(snapshot, shard)))) missing.push({ file: shard, why: `${INDEX_FILE} names it, but the snapshot lacks it` });
      }
    }
  }
  return missing;
}

/** The blobs of a repo still downloading or cut short (`<etag>.incomplete`). */
export async function incompleteBlobs(repoDir: string): Promise<string[]> {
  try {
    return (await readdir(join(repoDir, 'blobs'))).filter((n) => n.endsWith(INCOMPLETE_SUFFIX)).sort().map((n) => join(repoDir, 'blobs', n));
  } catch {
    return [];
  }
}

/**
 * The sentence that says a download of the repo was cut short and names the
 * command that finishes it; null when no blob is `.incomplete`. huggingface_hub
 * downloads a file into blobs/<etag>.incomplete, renames it to the blob, and
 * only then links the snapshot's file to it: an interrupted model.safetensors
 * leaves no link in the snapshot (nothing missingFiles can see), only that
 * blob. `peft-studio models` and every command's model value say it this way.
 */
export async function interruptedDownloadNote(repoDir: string, repoId: string): Promise<string | null> {
  return (await incompleteBlobs(repoDir)).length > 0 ? `A download was interrupted (a .incomplete blob): finish it with ${downloadAdvice(repoId)}.` : null;
}

/** What a snapshot lacks to be opened as a model (config.json, the weights' file or index), in words; empty when it has both. */
async function absentModelFiles(snapshot: string): Promise<string[]> {
  const absent: string[] = [];
  if (!(await isFile(join(snapshot, 'config.json')))) absent.push('config.json');
  if (!(await isFile(join(snapshot, 'model.safetensors'))) && !(await isFile(join(snapshot, INDEX_FILE)))) absent.push(`weights (model.safetensors or ${INDEX_FILE})`);
  return absent;
}

/**
 * Refuses a snapshot whose files are not all there: a file missingFiles names,
 * or a snapshot with no config.json or weights beside a `.incomplete` blob (a
 * download cut short before its link was made). Without such a blob a snapshot
 * that lacks them is left to openModelFolder, which says what it needs.
 */
async function checkSnapshotComplete(choice: { repoId: string; repoDir: string; snapshot: string }): Promise<void> {
  const missing = await missingFiles(choice.snapshot);
  if (missing.length) throw new HfCacheError(incompleteMessage(choice, missing));
  const absent = await absentModelFiles(choice.snapshot);
  const interrupted = absent.length ? await interruptedDownloadNote(choice.repoDir, choice.repoId) : null;
  if (interrupted !== null) {
    const blobs = (await incompleteBlobs(choice.repoDir)).map((b) => basename(b)).join(', ');
    throw new HfCacheError(`${choice.snapshot}: the download of ${choice.repoId} is incomplete: the snapshot has no ${absent.join(' and no ')} yet, and ${join(choice.repoDir, 'blobs')} holds ${blobs}. ${interrupted} Nothing is downloaded here.`);
  }
}

/** The message for a snapshot with missing files: each file, why, and the command that finishes it. */
export function incompleteMessage(choice: { repoId: string; snapshot: string }, missing: MissingFile[]): string {
  const list = missing.map((m) => `${m.file} (${m.why})`).join('; ');
  return `${choice.snapshot}: the download of ${choice.repoId} is incomplete: ${list}. Finish it with ${downloadAdvice(choice.repoId)}; nothing is downloaded here.`;
}

/**
 * A --model value that names a model in the Hugging Face cache -> its
 * snapshot: a cache repo folder (models--org--name), its snapshots folder,
 * or a repo id ("org/name") that is not an existing path, looked up in
 * hubCacheDir(env). Null when the value is anything else (a model folder,
 * a run folder, a path that does not exist and is no repo id): the caller
 * opens it as it is. A cache model that cannot be used is an HfCacheError.
 */
export async function resolveCachedModel(value: string, env: NodeJS.ProcessEnv = process.env): Promise<SnapshotChoice | null> {
  const path = resolve(expandHome(value));
  const info = await statOrNull(path);
  let repoDir: string | null = null;
  if (info?.isDirectory()) {
    if (/^datasets--.+/.test(basename(path))) {
      throw new HfCacheError(`${path}: is a dataset in the Hugging Face cache, not a model; give it as the data (--data ${path}), and a model as --model`);
    }
    // a snapshot folder given as it is: open it, unless its download is incomplete
    if (basename(dirname(path)) === 'snapshots' && (await isCacheRepoFolder(dirname(dirname(path))))) {
      const repo = dirname(dirname(path));
      await checkSnapshotComplete({ repoId: repoIdOfFolder(basename(repo)) ?? basename(repo), repoDir: repo, snapshot: path });
      return null;
    }
    if (await isFile(join(path, 'config.json'))) return null; // a model folder
    if (await isCacheRepoFolder(path)) repoDir = path;
    else if (basename(path) === 'snapshots' && (await isCacheRepoFolder(dirname(path)))) repoDir = dirname(path);
    else return null;
  } else if (info === null && looksLikeRepoId(value)) {
    const cache = hubCacheDir(env);
    const candidate = join(cache, repoFolderName(value));
    if (await isDir(candidate)) {
      repoDir = candidate;
    } else if (await isDir(join(cache, `datasets--${value.split('/').join('--')}`))) {
      throw new HfCacheError(`${value}: is a dataset in the Hugging Face cache, not a model; give it as the data (--data ${value}), and a model as --model`);
    } else if (value.includes('/')) {
      throw new HfCacheError(`${value}: no such folder (${path}), and no model ${value} in the Hugging Face cache (looked for ${candidate}; the cache folder comes from ${HUB_CACHE_RULE}). Nothing is downloaded: fetch it first with ${downloadAdvice(value)}, or pass the model's folder.`);
    } else {
      return null; // a single word: most likely a mistyped folder, which the caller reports
    }
  } else {
    return null;
  }
  const choice = await chooseSnapshot(repoDir);
  await checkSnapshotComplete(choice);
  return choice;
}

/** The one line a command prints about what it resolved. */
export function resolutionNote(choice: SnapshotChoice): string {
  return `using ${choice.repoId} at revision ${choice.revision.slice(0, 12)} (${choice.how}): ${choice.snapshot}`;
}
