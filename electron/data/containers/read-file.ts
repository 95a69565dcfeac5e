// Reads a dataset file and picks its container by extension:
//   .jsonl .ndjson        JSON Lines
//   .json                 a JSON array of rows, or JSON Lines when the file
//                         starts with "{" (many ".json" datasets are JSONL)
//   .csv / .tsv           header row + rows (RFC 4180 quoting)
//   .txt .text .md        plain text, one document per paragraph
//   .parquet              Parquet (parquet.ts), also sniffed by its magic number
// Any of them may be compressed: NAME.jsonl.gz, NAME.csv.zst (decompress.ts).
// Any other extension is sniffed: "[" -> JSON array, "{" -> JSON Lines.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { constants } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { DataError } from '../../training/data.js';
import { readDelimited } from './csv.js';
import { readJsonArray } from './json-array.js';
import { readJsonl, readJsonlBytes } from './jsonl.js';
import { checkedUtf8, decodeDataBytes, EncodingError } from './decode-text.js';
import type { ContainerRead } from './records.js';
import { readPlainText } from './text.js';
import { looksLikeParquet, readParquet } from './parquet.js';
import { decompressed, innerName } from './decompress.js';
import { DATA_FILE_TYPES, TEXT_DATA_EXTENSIONS } from './file-types.js';

/** The file's bytes, or a DataError that names it and says what is wrong. */
export function readDataBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not a file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new DataError(`cannot read data file ${file}: ${why}`);
  }
}

/**
 * JSON Lines, refusing with a clear error a file whose objects are
 * pretty-printed over several lines: read line by line, not one line parses,
 * and "no parseable rows" would not say why.
 */
function readJsonLines(text: string, file: string): ContainerRead {
  const read = readJsonl(text, file);
  if (read.records.length > 0 || read.problems.length === 0) return read;
  const rule = 'a .json dataset must be an array of rows ([{...}, {...}]) or JSON Lines (one object per line)';
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = undefined;
  }
  if (typeof whole === 'object' && whole !== null && !Array.isArray(whole)) {
    throw new DataError(`${file}: the file is a single JSON object spread over several lines, not a list of rows; ${rule}. Put the rows in an array, or write each row as one object on its own line`);
  }
  const firstLine = text.trimStart().split('\n', 1)[0].trim();
  if (firstLine === '{') {
    throw new DataError(`${file}: its JSON objects are spread over several lines (pretty-printed), so no line is a whole row; ${rule}. Write each row as one object on its own line, or wrap the objects in [ ... ] separated by commas`);
  }
  return read;
}

/** Parses dataset text by the file's extension (see above); `named`: the name that picks it (the file's, without .gz / .zst). */
export function parseContainer(text: string, file: string, named = file): ContainerRead {
  const ext = extname(named).toLowerCase();
  const first = text.trimStart()[0];
  switch (ext) {
    case '.jsonl':
    case '.ndjson':
      return readJsonLines(text, file);
    case '.json':
      return first === '{' ? readJsonLines(text, file) : readJsonArray(text, file);
    case '.csv':
      return readDelimited(text, file, 'csv');
    case '.tsv':
    case '.tab':
      return readDelimited(text, file, 'tsv');
    case '.txt':
    case '.text':
    case '.md':
      return readPlainText(text);
    default:
      if (first === '[') return readJsonArray(text, file);
      if (first === '{') return readJsonLines(text, file);
      throw new DataError(`${file}: unknown data file type "${ext || '(no extension)'}"; use ${DATA_FILE_TYPES}`);
  }
}


/** JSON Lines as parseContainer would take the file: .jsonl / .ndjson, or .json and unknown names whose text starts with '{'. */
function isJsonLinesByName(named: string, bytes: Uint8Array): boolean {
  const ext = extname(named).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return true;
  if (ext !== '.json' && DATA_FILE_EXTENSIONS_KNOWN.has(ext)) return false;
  // the first character after a BOM and whitespace
  let i = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  return bytes[i] === 0x7b; // '{'
}
const DATA_FILE_EXTENSIONS_KNOWN = new Set(['.csv', '.tsv', '.tab', '.txt', '.text', '.md']);

/** A Git LFS pointer: what a clone without `git lfs` leaves in place of a large file. */
const LFS_POINTER = 'version https://git-lfs.github.com/spec/v1';

export async function readContainer(file: string): Promise<ContainerRead> {
  return containerOfBytes(readDataBytes(file), file);
}

/**
 * The rows of a data file whose bytes were read already (the token cache keys
 * them by their hash: load-dataset.ts). JSON Lines of more text than one
 * string can hold (`wholeText`: V8's limit, 512 MiB; tests lower it) are read
 * a line at a time, with the same records and problems.
 */
export async function containerOfBytes(raw: Buffer, file: string, wholeText = constants.MAX_STRING_LENGTH): Promise<ContainerRead> {
  const named = innerName(file);
  if (raw.length < 1024 && raw.subarray(0, LFS_POINTER.length).toString('latin1') === LFS_POINTER) {
    throw new DataError(`${file}: is a Git LFS pointer, not the data (the repository was cloned without Git LFS); run \`git lfs pull\` in it, or download the file itself`);
  }
  const bytes = decompressed(raw, file);
  if (extname(named).toLowerCase() === '.parquet' || looksLikeParquet(bytes)) return readParquet(bytes, file);
  if (bytes.length > wholeText && isJsonLinesByName(named, bytes)) return readJsonlBytes(checkedUtf8(bytes, file), file);
  let text: string;
  try {
    text = decodeDataBytes(bytes, file);
  } catch (e) {
    // A file of another type (.arrow, .xlsx, ...) is binary: its type is the news, not its encoding.
    if (e instanceof EncodingError && !TEXT_DATA_EXTENSIONS.includes(extname(named).toLowerCase())) {
      return parseContainer('', file, named);
    }
    throw e;
  }
  return parseContainer(text, file, named);
}
