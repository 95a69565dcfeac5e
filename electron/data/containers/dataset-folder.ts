// A dataset given as a folder, as the Hugging Face hub lays datasets out
// (docs: hub/datasets-file-names-and-splits): the data files under it, in
// shards (train-00000-of-00004.parquet, ...) and split by name. A file's
// split is a keyword delimited by non-word characters (_ - . space or a
// digit) in a folder name under the dataset's folder (checked first) or in
// its file name:
//   train       train, training
//   validation  validation, valid, val, dev
//   test        test, testing, eval, evaluation
// Training reads the train split; evaluation the validation split, else the
// test split. A folder whose files name no split is one dataset, read whole.
// Files are read in natural order (shard 2 before shard 10).
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { DataError } from '../../training/data.js';
import { countOf } from '../../text/plural.js';
import { innerName } from './decompress.js';
import { cachedDatasetNote, cachedDatasetOfFolder } from './hf-cache-dataset.js';
import { DATA_FILE_TYPES } from './file-types.js';

export type SplitName = 'train' | 'validation' | 'test';
/** What a dataset path is read for: a run's training rows, or its evaluation rows. */
export type DatasetRole = 'train' | 'eval';

const SPLIT_KEYWORDS: Readonly<Record<SplitName, readonly string[]>> = {
  train: ['train', 'training'],
  validation: ['validation', 'valid', 'val', 'dev'],
  test: ['test', 'testing', 'eval', 'evaluation'],
};
const SPLITS = Object.keys(SPLIT_KEYWORDS) as SplitName[];

/** Extensions a folder's data files have (the containers read-file.ts reads; .md is left out: in a folder it is the dataset card or docs). */
const FOLDER_DATA_EXTENSIONS = ['.jsonl', '.ndjson', '.json', '.csv', '.tsv', '.tab', '.txt', '.text', '.parquet'];
/** Metadata files datasets and the hub write next to data: JSON, but not rows. */
const METADATA_FILES = new Set(['dataset_info.json', 'dataset_infos.json', 'state.json', 'dataset_dict.json']);
/** How deep a folder is searched, and how many files it may hold: a home folder given by mistake is refused, not walked. */
const MAX_DEPTH = 6;
const MAX_FILES = 10_000;

export interface DatasetFiles {
  /** the path as given */
  path: string;
  /** the folder the files are named under: the path itself, or the snapshot a Hugging Face cache folder stands for */
  root: string;
  /** the files to read, in order (one: the path itself, when it is a file) */
  files: string[];
  /** the split read (null: a single file, or a folder that names no split) */
  split: SplitName | null;
  /** the folder's splits and their files (empty for a file or an unsplit folder) */
  splits: Partial<Record<SplitName, string[]>>;
  /** things to say about the choice (the other splits, files passed over) */
  notes: string[];
}

function hasDelimitedKeyword(name: string, keyword: string): boolean {
  return new RegExp(`(^|[-._ 0-9])${keyword}($|[-._ 0-9])`).test(name.toLowerCase());
}

function splitOfName(name: string): SplitName | null {
  for (const split of SPLITS) if (SPLIT_KEYWORDS[split].some((k) => hasDelimitedKeyword(name, k))) return split;
  return null;
}

/** The split a file belongs to by its path under the dataset folder: a folder name first (outermost first), then the file name. */
export function splitOfPath(relativePath: string): SplitName | null {
  const parts = relativePath.split(/[\\/]/);
  const file = parts.pop()!;
  for (const dir of parts) {
    const split = splitOfName(dir);
    if (split) return split;
  }
  return splitOfName(stripDataExtensions(file));
}

function stripDataExtensions(file: string): string {
  const inner = innerName(file);
  const dot = inner.lastIndexOf('.');
  return dot > 0 ? inner.slice(0, dot) : inner;
}

function isDataFile(name: string): boolean {
  if (name.startsWith('.') || METADATA_FILES.has(name.toLowerCase())) return false;
  const inner = innerName(name).toLowerCase();
  return FOLDER_DATA_EXTENSIONS.some((ext) => inner.endsWith(ext));
}

/** "shard-2" before "shard-10"; the same order on every machine. */
const naturalOrder = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' }).compare;

interface Walk {
  data: string[];
  arrow: number;
  skipped: string[];
}

function walk(root: string, dir: string, depth: number, found: Walk): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(`cannot read the dataset folder ${dir}: ${code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
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
        throw new DataError(`${full}: is a link to a file that is not there (an unfinished download?); download the dataset again, or remove the link`);
      }
    }
    if (isDir) {
      if (depth >= MAX_DEPTH) throw new DataError(`${root}: has folders more than ${MAX_DEPTH} levels deep (${relative(root, full)}); give the dataset's own folder, or one data file`);
      walk(root, full, depth + 1, found);
    } else if (isFile) {
      if (isDataFile(entry.name)) found.data.push(full);
      else if (entry.name.toLowerCase().endsWith('.arrow')) found.arrow++;
      else found.skipped.push(relative(root, full));
      if (found.data.length + found.skipped.length > MAX_FILES) {
        throw new DataError(`${root}: holds more than ${MAX_FILES} files; give the dataset's own folder, or one data file`);
      }
    }
  }
}

function roleSplits(role: DatasetRole): SplitName[] {
  return role === 'train' ? ['train'] : ['validation', 'test'];
}

/** The data files a dataset path stands for, read as `role`; a file stands for itself. */
export function datasetFiles(path: string, role: DatasetRole = 'train'): DatasetFiles {
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
  const found: Walk = { data: [], arrow: 0, skipped: [] };
  walk(root, root, 1, found);
  if (found.data.length === 0) {
    const arrow = found.arrow > 0
      ? ` It holds ${countOf(found.arrow, 'Arrow file')} (written by the datasets library's save_to_disk): write the rows out with to_json or to_parquet, or give the folder of the dataset's files as the hub serves them.`
      : '';
    throw new DataError(`${root}: the folder holds no data file (${DATA_FILE_TYPES}).${arrow}`);
  }
  const files = found.data.sort((a, b) => naturalOrder(relative(root, a), relative(root, b)));
  const splits: Partial<Record<SplitName, string[]>> = {};
  const unsplit: string[] = [];
  for (const file of files) {
    const split = splitOfPath(relative(root, file));
    if (split) (splits[split] ??= []).push(file);
    else unsplit.push(file);
  }
  const named = SPLITS.filter((s) => splits[s]);
  if (named.length === 0) return { path, root, files, split: null, splits: {}, notes };
  const wanted = roleSplits(role);
  const split = wanted.find((s) => splits[s]);
  const described = named.map((s) => `${s} (${countOf(splits[s]!.length, 'file')})`).join(', ');
  if (!split) {
    const want = role === 'train' ? 'train split' : 'validation or test split';
    throw new DataError(`${path}: the folder's files are split into ${described}, but there is no ${want} (file or folder names with ${wanted.map((s) => SPLIT_KEYWORDS[s].map((k) => `"${k}"`).join(' / ')).join(', or ')}); give the data file itself, or rename the files`);
  }
  const others = named.filter((s) => s !== split && !(role === 'eval' && s === 'train'));
  if (role === 'train' && others.length > 0) {
    notes.push(`${path}: its ${others.map((s) => `${s} split (${countOf(splits[s]!.length, 'file')})`).join(' and ')} ${others.length > 1 ? 'are' : 'is'} not trained on; to evaluate on ${others.includes('validation') ? 'the validation split' : 'the test split'}, give this folder as the evaluation data too`);
  }
  if (role === 'eval' && split === 'test') notes.push(`${path}: no validation split; evaluating on the test split`);
  if (unsplit.length > 0) {
    notes.push(`${path}: ${countOf(unsplit.length, 'file')} named after no split passed over (${unsplit.slice(0, 3).map((f) => relative(root, f)).join(', ')}${unsplit.length > 3 ? ', ...' : ''})`);
  }
  return { path, root, files: splits[split]!, split, splits, notes };
}

/** "train split, 4 files: data/train-00000-of-00004.parquet ... " for messages; null for a single file. */
export function describeDatasetFiles(d: DatasetFiles): string | null {
  if (d.files.length === 1 && d.files[0] === d.path) return null;
  const first = relative(d.root, d.files[0]) || basename(d.files[0]);
  const last = relative(d.root, d.files[d.files.length - 1]);
  const which = d.split ? `its ${d.split} split, ` : '';
  const range = d.files.length === 1 ? first : `${first} ... ${last}`;
  return `${d.path}: ${which}${countOf(d.files.length, 'file')} (${range.split(sep).join('/')})`;
}
