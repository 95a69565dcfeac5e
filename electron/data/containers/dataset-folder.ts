// A dataset given as a folder, as the Hugging Face hub lays datasets out
// (docs: hub/datasets-file-names-and-splits), or as a pattern of files:
//
// - Files written by the datasets library's push_to_hub,
//   data/{split}-00000-of-00004.parquet, are split by exactly that name
//   (train, validation, test, or a name of the dataset's own, like
//   train_sft).
// - Otherwise a file's split is a keyword delimited by non-word characters
//   (_ - . space or a digit) in a folder name under the dataset's folder
//   (outermost first) or in its file name:
//     train       train, training
//     validation  validation, valid, val, dev
//     test        test, testing, eval, evaluation
// - A folder whose files name no split is one dataset, read whole.
//
// Training reads the train split; evaluation the validation split, else the
// test split. Files are read in natural order (shard 2 before shard 10).
// What would silently mix different data is refused, naming what to give
// instead: a split spread over several subsets (main/train-*,
// socratic/train-*); split names of the dataset's own (train_sft) are
// never taken for train, and listed when no split is. Within a split, one
// file type is read (the most common, as the datasets library does): the
// same rows as .jsonl and .parquet are not read twice. A pattern
// (data/train_sft-*.parquet: * and ? within a name, ** for any folders)
// stands for the files it matches, whatever their names.
import { existsSync, readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { DataError } from '../../training/data.js';
import { countOf } from '../../text/plural.js';
import { innerName } from './decompress.js';
import { cachedDatasetNote, cachedDatasetOfFolder } from './hf-cache-dataset.js';
import { DATA_FILE_TYPES } from './file-types.js';

/** A split's name: one of the keyword splits, or (push_to_hub files) a name of the dataset's own. */
export type SplitName = string;
/** What a dataset path is read for: a run's training rows, or its evaluation rows. */
export type DatasetRole = 'train' | 'eval';

type KeywordSplit = 'train' | 'validation' | 'test';
const SPLIT_KEYWORDS: Readonly<Record<KeywordSplit, readonly string[]>> = {
  train: ['train', 'training'],
  validation: ['validation', 'valid', 'val', 'dev'],
  test: ['test', 'testing', 'eval', 'evaluation'],
};
const KEYWORD_SPLITS = Object.keys(SPLIT_KEYWORDS) as KeywordSplit[];

/** Extensions a folder's data files have (the containers read-file.ts reads; .md is left out: in a folder it is the dataset card or docs). */
const FOLDER_DATA_EXTENSIONS = ['.parquet', '.jsonl', '.ndjson', '.json', '.csv', '.tsv', '.tab', '.txt', '.text'];
/** Metadata files datasets and the hub write next to data: JSON, but not rows. */
const METADATA_FILES = new Set(['dataset_info.json', 'dataset_infos.json', 'state.json', 'dataset_dict.json']);
/** Files that make a folder a run (or an adapter) of ours, not data: a run folder inside a dataset folder is passed over. */
const RUN_MARKERS = ['run.json', 'adapter_config.json'];
/** How deep a folder is searched, and how many files it may hold: a home folder given by mistake is refused, not walked. */
const MAX_DEPTH = 6;
const MAX_FILES = 10_000;
/** push_to_hub's shard names: data/{split}-00000-of-00004.{ext}, in data/ or in the folder given (which may be that data/) */
const PUSH_TO_HUB_SHARD = /^(?:data\/)?([^/]+?)-\d{5}-of-\d{5}(?:-[^/]*)?\.[^/]+$/;

export interface DatasetFiles {
  /** the path as given */
  path: string;
  /** the folder the files are named under: the path itself, the snapshot a Hugging Face cache folder stands for, or a pattern's fixed folder */
  root: string;
  /** the files to read, in order (one: the path itself, when it is a file) */
  files: string[];
  /** the split read (null: a single file, a pattern, or a folder that names no split) */
  split: SplitName | null;
  /** the folder's splits and their files (empty for a file, a pattern or an unsplit folder) */
  splits: Record<SplitName, string[]>;
  /** things to say about the choice (the other splits, files passed over) */
  notes: string[];
}

function hasDelimitedKeyword(name: string, keyword: string): boolean {
  return new RegExp(`(^|[-._ 0-9])${keyword}($|[-._ 0-9])`).test(name.toLowerCase());
}

function splitOfName(name: string): KeywordSplit | null {
  for (const split of KEYWORD_SPLITS) if (SPLIT_KEYWORDS[split].some((k) => hasDelimitedKeyword(name, k))) return split;
  return null;
}

/** The keyword split a file belongs to by its path under the dataset folder: a folder name first (outermost first), then the file name. */
export function splitOfPath(relativePath: string): KeywordSplit | null {
  const parts = relativePath.split(/[\\/]/);
  const file = parts.pop()!;
  for (const dir of parts) {
    const split = splitOfName(dir);
    if (split) return split;
  }
  return splitOfName(stripDataExtensions(file));
}

/** The split a push_to_hub shard names (data/{split}-00000-of-00004.parquet, or such a shard in the folder given), or null. */
export function pushToHubSplit(relativePath: string): string | null {
  return PUSH_TO_HUB_SHARD.exec(relativePath.split(sep).join('/'))?.[1] ?? null;
}

function stripDataExtensions(file: string): string {
  const inner = innerName(file);
  const dot = inner.lastIndexOf('.');
  return dot > 0 ? inner.slice(0, dot) : inner;
}

/** A data file's type: its data extension with the compression's (".jsonl", ".jsonl.gz"); null for other files. */
function dataType(name: string): string | null {
  const lower = name.toLowerCase();
  const inner = innerName(lower);
  const ext = FOLDER_DATA_EXTENSIONS.find((e) => inner.endsWith(e));
  return ext ? ext + lower.slice(inner.length) : null;
}

function isDataFile(name: string): boolean {
  return !name.startsWith('.') && !METADATA_FILES.has(name.toLowerCase()) && dataType(name) !== null;
}

/** "shard-2" before "shard-10"; the same order on every machine. */
const naturalOrder = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' }).compare;
const slash = (path: string) => path.split(sep).join('/');

interface Walk {
  data: string[];
  arrow: number;
  /** run (or adapter) folders passed over */
  runs: string[];
  /** real paths of the folders walked, and of the dataset folder (a link back up is a loop) */
  seen: Set<string>;
  rootReal: string;
  count: number;
}

function walk(root: string, dir: string, depth: number, found: Walk): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' ? 'permission denied; give this user read access to it, or give the data files themselves' : (e as Error).message;
    throw new DataError(`cannot read the dataset folder ${dir}: ${why}`);
  }
  if (dir !== root && entries.some((e) => RUN_MARKERS.includes(e.name))) {
    found.runs.push(relative(root, dir));
    return;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue; // .git, .cache, .huggingface: not the dataset
    const full = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      // The hub's cache links snapshot files to blobs: follow links to files and folders alike.
      try {
        const target = statSync(full);
        isDir = target.isDirectory();
        isFile = target.isFile();
      } catch {
        // a dangling link matters only where data was meant to be
        if (isDataFile(entry.name)) throw new DataError(`${full}: is a link to a file that is not there (an unfinished download?); download the dataset again, or remove the link`);
        continue;
      }
    }
    if (isDir) {
      const real = realpathSync(full);
      // a link to a folder already read, or to one the dataset folder is in: reading on would never end
      if (found.seen.has(real) || isAncestor(real, found.rootReal)) throw new DataError(`${full}: links back to a folder already read (${real}), a loop; give the dataset's own folder, or remove the link`);
      found.seen.add(real);
      if (depth >= MAX_DEPTH) throw new DataError(`${root}: has folders more than ${MAX_DEPTH} levels deep (${relative(root, full)}); give the dataset's own folder, or one data file`);
      walk(root, full, depth + 1, found);
    } else if (isFile) {
      if (isDataFile(entry.name)) found.data.push(full);
      else if (entry.name.toLowerCase().endsWith('.arrow')) found.arrow++;
      if (++found.count > MAX_FILES) throw new DataError(`${root}: holds more than ${MAX_FILES} files; give the dataset's own folder, or one data file`);
    }
  }
}

/** Whether `dir` is `path` or a folder above it (the file system's root included). */
function isAncestor(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function walkFolder(root: string): Walk {
  const rootReal = realpathSync(root);
  const found: Walk = { data: [], arrow: 0, runs: [], seen: new Set([rootReal]), rootReal, count: 0 };
  walk(root, root, 1, found);
  found.data.sort((a, b) => naturalOrder(relative(root, a), relative(root, b)));
  return found;
}

/** Whether a dataset value is there: a file or folder, or a pattern whose fixed folder is (its files are checked when read). */
export function datasetPathExists(path: string): boolean {
  if (!isFilePattern(path)) return existsSync(path);
  const parts = path.split(/[\\/]/);
  const fixed = parts.findIndex((p) => /[*?]/.test(p));
  return existsSync(parts.slice(0, fixed).join(sep) || (fixed === 1 && parts[0] === '' ? sep : '.'));
}

/** Whether a dataset value is a pattern of files (data/train_sft-*.parquet) rather than a path. */
export function isFilePattern(path: string): boolean {
  return /[*?]/.test(basename(path)) || /[*?]/.test(dirname(path));
}

/** One segment of a pattern (no "/"): * any characters, ? one. */
function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (const c of segment) re += c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${re}$`);
}

/**
 * The files a pattern matches, under its fixed leading folder: each segment
 * read from its folder alone, folders walked only where a ** says (within
 * the walk's depth and file limits, links followed, loops refused).
 */
function patternFiles(pattern: string): DatasetFiles {
  const parts = pattern.split(/[\\/]/);
  const fixed = parts.findIndex((p) => /[*?]/.test(p));
  const root = parts.slice(0, fixed).join(sep) || (fixed === 1 && parts[0] === '' ? sep : '.');
  const segments = parts.slice(fixed).filter((p, i, all) => p !== '**' || all[i - 1] !== '**');
  const matched = new Set<string>();
  const seen = new Set<string>();
  let count = 0;
  const entriesOf = (dir: string): { name: string; full: string; isDir: boolean; isFile: boolean }[] => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (dir === root) throw new DataError(`${pattern}: its folder ${root} cannot be read (${code === 'ENOENT' ? 'no such folder' : code === 'EACCES' ? 'permission denied' : (e as Error).message}); check the path`);
      return []; // a folder below the pattern's own that cannot be read holds no match
    }
    return names.filter((n) => !n.startsWith('.')).map((name) => {
      const full = join(dir, name);
      try {
        const st = statSync(full);
        return { name, full, isDir: st.isDirectory(), isFile: st.isFile() };
      } catch {
        return { name, full, isDir: false, isFile: false }; // a dangling link
      }
    });
  };
  const visit = (dir: string, i: number, depth: number): void => {
    const segment = segments[i];
    if (segment === '**') {
      const real = realpathSync(dir);
      if (seen.has(real)) return; // a link back to a folder already walked
      if (dir !== root && RUN_MARKERS.some((m) => existsSync(join(dir, m)))) return; // a run (or adapter) folder: not data, as in a folder walk
      seen.add(real);
      visit(dir, i + 1, depth); // no folder
      if (depth >= MAX_DEPTH) throw new DataError(`${pattern}: ** reaches folders more than ${MAX_DEPTH} levels deep under ${root}; give a narrower pattern`);
      for (const e of entriesOf(dir)) if (e.isDir) visit(e.full, i, depth + 1);
      return;
    }
    const last = i === segments.length - 1;
    const re = segmentRegExp(segment);
    for (const e of entriesOf(dir)) {
      if (!re.test(e.name)) continue;
      if (last && e.isFile && isDataFile(e.name)) {
        matched.add(e.full);
        if (++count > MAX_FILES) throw new DataError(`${pattern}: matches more than ${MAX_FILES} files; give a narrower pattern`);
      } else if (!last && e.isDir && !RUN_MARKERS.some((m) => existsSync(join(e.full, m)))) {
        visit(e.full, i + 1, depth + 1);
      }
    }
  };
  visit(root, 0, 0);
  const files = [...matched].sort((a, b) => naturalOrder(relative(root, a), relative(root, b)));
  if (files.length === 0) throw new DataError(`${pattern}: matches no data file (${DATA_FILE_TYPES}) under ${root}; check the pattern (* and ? within a name, ** for any folders)`);
  return { path: pattern, root, files, split: null, splits: {}, notes: [] };
}

function roleSplits(role: DatasetRole): KeywordSplit[] {
  return role === 'train' ? ['train'] : ['validation', 'test'];
}

/** Which subset a file of a split belongs to: its first folder, unless that folder is a split's own (train/, data/). */
function subsetOf(relativePath: string): string {
  const parts = relativePath.split(/[\\/]/);
  if (parts.length === 1) return '';
  const first = parts[0];
  return first === 'data' || splitOfName(first) ? '' : first;
}

/** The files of one split, keeping the most common file type (ties: the earlier in FOLDER_DATA_EXTENSIONS). */
function oneFileType(files: string[]): { kept: string[]; passed: string[] } {
  const byType = new Map<string, string[]>();
  for (const f of files) {
    const t = dataType(basename(f))!;
    byType.set(t, [...(byType.get(t) ?? []), f]);
  }
  if (byType.size <= 1) return { kept: files, passed: [] };
  const rank = (t: string) => FOLDER_DATA_EXTENSIONS.findIndex((e) => t.startsWith(e)) * 2 + (t.endsWith('.gz') || t.endsWith('.zst') ? 1 : 0);
  const [type] = [...byType.keys()].sort((a, b) => byType.get(b)!.length - byType.get(a)!.length || rank(a) - rank(b));
  return { kept: byType.get(type)!, passed: files.filter((f) => dataType(basename(f)) !== type) };
}

/** The splits of a folder's files: push_to_hub's exact names when it wrote them, else the keywords. */
function splitFiles(root: string, files: string[]): { splits: Record<SplitName, string[]>; unsplit: string[]; exact: boolean } {
  const splits: Record<SplitName, string[]> = {};
  const unsplit: string[] = [];
  const exact = files.some((f) => pushToHubSplit(relative(root, f)) !== null);
  for (const file of files) {
    const rel = relative(root, file);
    const split = exact ? pushToHubSplit(rel) : splitOfPath(rel);
    if (split) (splits[split] ??= []).push(file);
    else unsplit.push(file);
  }
  return { splits, unsplit, exact };
}

/** The split name a refusal suggests for a role: one with "train" in it for training, else "valid", "dev" or "test" for evaluation. */
function suggested(names: SplitName[], role: DatasetRole): SplitName {
  const words = role === 'train' ? ['train'] : ['valid', 'dev', 'test', 'eval'];
  return names.find((n) => words.some((w) => n.toLowerCase().includes(w))) ?? names[0];
}

/** The folder (under root) a split's shards are in: data/, or the folder given itself. */
function shardFolder(root: string, splits: Record<SplitName, string[]>, split: SplitName): string {
  return relative(root, dirname(splits[split][0]));
}

/** A folder's split names in a fixed order: train, validation, test, then the dataset's own names alphabetically. */
function splitNames(splits: Record<SplitName, string[]>): SplitName[] {
  const rank = (s: string) => {
    const k = KEYWORD_SPLITS.indexOf(s as KeywordSplit);
    return k < 0 ? KEYWORD_SPLITS.length : k;
  };
  return Object.keys(splits).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const describeSplits = (splits: Record<SplitName, string[]>) =>
  splitNames(splits).map((s) => `${s} (${countOf(splits[s].length, 'file')})`).join(', ');

/** The data files a dataset path stands for, read as `role`; a file stands for itself. */
export function datasetFiles(path: string, role: DatasetRole = 'train', suggestEvalSplit = true): DatasetFiles {
  if (isFilePattern(path)) return patternFiles(path);
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // not there (or unreadable): the file reader says which, naming the path
    return { path, root: path, files: [path], split: null, splits: {}, notes: [] };
  }
  if (!isDir) return { path, root: path, files: [path], split: null, splits: {}, notes: [] };
  const notes: string[] = [];
  // a dataset in the Hugging Face cache: its files are those of one snapshot
  const cached = cachedDatasetOfFolder(path);
  if (cached) notes.push(cachedDatasetNote(cached));
  const root = cached?.snapshot ?? path;
  const found = walkFolder(root);
  if (found.runs.length > 0) notes.push(`${countOf(found.runs.length, 'run or adapter folder')} inside it passed over (${found.runs.slice(0, 3).join(', ')}): not data`);
  if (found.data.length === 0) {
    const arrow = found.arrow > 0
      ? ` It holds ${countOf(found.arrow, 'Arrow file')} (written by the datasets library's save_to_disk): write the rows out with to_json or to_parquet, or give the folder of the dataset's files as the hub serves them.`
      : '';
    throw new DataError(`${root}: the folder holds no data file (${DATA_FILE_TYPES}).${arrow}`);
  }
  const { splits, unsplit, exact } = splitFiles(root, found.data);
  const named = splitNames(splits);
  let chosen: string[];
  let split: SplitName | null = null;
  if (named.length === 0) {
    chosen = found.data;
  } else {
    const wanted = roleSplits(role);
    split = wanted.find((s) => splits[s]) ?? null;
    if (split === null) {
      const want = role === 'train' ? 'train split' : 'validation or test split';
      const how = exact
        ? `give the files of the split you mean as a pattern, e.g. --data '${slash(join(root, shardFolder(root, splits, suggested(named, role)), `${suggested(named, role)}-*`))}'`
        : `(file or folder names with ${wanted.map((s) => SPLIT_KEYWORDS[s].map((k) => `"${k}"`).join(' / ')).join(', or ')}); give the data file itself, or rename the files`;
      throw new DataError(`${path}: the folder's files are split into ${describeSplits(splits)}, but there is no ${want}; ${how}`);
    }
    chosen = splits[split];
    const subsets = [...new Set(chosen.map((f) => subsetOf(relative(root, f))))];
    if (subsets.length > 1) {
      throw new DataError(`${path}: holds several subsets (${subsets.map((s) => s || '(top level)').join(', ')}), each with its own ${split} split; reading them together would mix different datasets. Give the folder of the subset you mean, e.g. ${join(root, subsets.find((s) => s) ?? '')}`);
    }
    const others = named.filter((s) => s !== split && !(role === 'eval' && s === 'train'));
    if (role === 'train' && others.length > 0) {
      const evalSplit = others.includes('validation') ? 'validation' : others.includes('test') ? 'test' : null;
      notes.push(`its ${others.map((s) => `${s} split (${countOf(splits[s].length, 'file')})`).join(' and ')} ${others.length > 1 ? 'are' : 'is'} not trained on` +
        (evalSplit && suggestEvalSplit ? `; to evaluate on the ${evalSplit} split, give this folder as the evaluation data too` : ''));
    }
    if (role === 'eval' && split === 'test') notes.push('no validation split; evaluating on the test split');
    if (unsplit.length > 0) {
      notes.push(`${countOf(unsplit.length, 'file')} named after no split passed over (${unsplit.slice(0, 3).map((f) => slash(relative(root, f))).join(', ')}${unsplit.length > 3 ? ', ...' : ''})`);
    }
  }
  const { kept, passed } = oneFileType(chosen);
  if (passed.length > 0) {
    notes.push(`${countOf(passed.length, 'file')} of another type passed over (${passed.slice(0, 3).map((f) => slash(relative(root, f))).join(', ')}${passed.length > 3 ? ', ...' : ''}): one type is read, the most common, so the same rows in two formats are not read twice`);
  }
  return { path, root, files: kept, split, splits, notes };
}

/** "its train split, 4 files (data/train-00000-of-00004.parquet ... )" for messages; null for a single file. */
export function describeDatasetFiles(d: DatasetFiles): string | null {
  if (d.files.length === 1 && d.files[0] === d.path) return null;
  const first = relative(d.root, d.files[0]) || basename(d.files[0]);
  const last = relative(d.root, d.files[d.files.length - 1]);
  const which = d.split ? `its ${d.split} split, ` : '';
  const range = d.files.length === 1 ? first : `${first} ... ${last}`;
  return `${which}${countOf(d.files.length, 'file')} (${slash(range)})`;
}
