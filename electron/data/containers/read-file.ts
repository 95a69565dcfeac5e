// Reads a dataset file and picks its container by extension:
//   .jsonl .ndjson        JSON Lines
//   .json                 a JSON array of rows, or JSON Lines when the file
//                         starts with "{" (many ".json" datasets are JSONL)
//   .csv / .tsv           header row + rows (RFC 4180 quoting)
//   .txt .text .md        plain text, one document per paragraph
//   .parquet              Parquet (parquet.ts), also sniffed by its magic number
// Any of them may be compressed: NAME.jsonl.gz, NAME.csv.zst (decompress.ts).
// Any other extension is sniffed: "[" -> JSON array, "{" -> JSON Lines.
// CSV / TSV are read from the bytes (csv-bytes.ts), and so are JSON Lines and
// JSON arrays past one string's size (jsonl.ts, json-array-bytes.ts).
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { constants } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { DataError } from '../../training/data.js';
import { readDelimited } from './csv.js';
import { readDelimitedBytes } from './csv-bytes.js';
import { readJsonArray } from './json-array.js';
import { readJsonArrayBytes } from './json-array-bytes.js';
import { readJsonl, readJsonlBytes } from './jsonl.js';
import { checkedUtf8, EncodingError, textOfBody } from './decode-text.js';
import type { ContainerKind, ContainerRead } from './records.js';
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

/**
 * The container a file is read as (see above): by the extension of `named`,
 * else by `first()`, the text's first character after white space; undefined
 * for a file of no data type.
 */
function containerKind(named: string, first: () => string | undefined): Exclude<ContainerKind, 'parquet'> | undefined {
  switch (extname(named).toLowerCase()) {
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    case '.json':
      return first() === '{' ? 'jsonl' : 'json-array';
    case '.csv':
      return 'csv';
    case '.tsv':
    case '.tab':
      return 'tsv';
    case '.txt':
    case '.text':
    case '.md':
      return 'text';
    default: {
      const c = first();
      return c === '[' ? 'json-array' : c === '{' ? 'jsonl' : undefined;
    }
  }
}

/** Parses dataset text by the file's extension (see above); `named`: the name that picks it (the file's, without .gz / .zst). */
export function parseContainer(text: string, file: string, named = file): ContainerRead {
  const kind = containerKind(named, () => text.trimStart()[0]);
  switch (kind) {
    case 'jsonl':
      return readJsonLines(text, file);
    case 'json-array':
      return readJsonArray(text, file);
    case 'csv':
    case 'tsv':
      return readDelimited(text, file, kind);
    case 'text':
      return readPlainText(text);
    default: {
      const ext = extname(named).toLowerCase();
      throw new DataError(`${file}: unknown data file type "${ext || '(no extension)'}"; use ${DATA_FILE_TYPES}`);
    }
  }
}

/**
 * The container's rows read from its bytes (`body`: after the BOM, checked
 * UTF-8) without one string of the whole text, or null when the text reader
 * is to read it. CSV / TSV always: the byte reader is the faster and lighter
 * one (a 200 MB CSV: 3 s and 1 GiB against 18 s and 6 GiB, the text reader
 * building every field a character at a time). JSON Lines and JSON arrays
 * only past `fits` (their text readers are a little faster); plain text and
 * files of no data type never (too large, the text path refuses them).
 */
function readFromBytes(body: Uint8Array, file: string, named: string, fits: boolean): ContainerRead | null {
  const kind = containerKind(named, () => firstCharacter(body));
  switch (kind) {
    case 'csv':
    case 'tsv':
      return readDelimitedBytes(body, file, kind);
    case 'jsonl':
      return fits ? null : readJsonlBytes(body, file);
    case 'json-array':
      return fits ? null : readJsonArrayBytes(body, file);
    default:
      return null;
  }
}

/** The text's first character after white space, as parseContainer's text.trimStart()[0], decoding only as far as it. */
function firstCharacter(body: Uint8Array): string | undefined {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const piece = 4096;
  for (let at = 0; at < body.length; at += piece) {
    const text = decoder.decode(body.subarray(at, at + piece), { stream: true }).trimStart();
    if (text !== '') return text[0];
  }
  return decoder.decode().trimStart()[0];
}

/** A Git LFS pointer: what a clone without `git lfs` leaves in place of a large file. */
const LFS_POINTER = 'version https://git-lfs.github.com/spec/v1';

export async function readContainer(file: string): Promise<ContainerRead> {
  return containerOfBytes(readDataBytes(file), file);
}

/**
 * The rows of a data file whose bytes were read already (the token cache keys
 * them by their hash: load-dataset.ts). CSV / TSV, and JSON Lines and JSON
 * arrays of more text than one string can hold (`wholeText`: V8's limit,
 * 512 MiB; tests lower it), are read from the bytes a record, a line or an
 * element at a time, with the same records and problems as the text readers.
 */
export async function containerOfBytes(raw: Buffer, file: string, wholeText = constants.MAX_STRING_LENGTH): Promise<ContainerRead> {
  const named = innerName(file);
  if (raw.length < 1024 && raw.subarray(0, LFS_POINTER.length).toString('latin1') === LFS_POINTER) {
    throw new DataError(`${file}: is a Git LFS pointer, not the data (the repository was cloned without Git LFS); run \`git lfs pull\` in it, or download the file itself`);
  }
  const bytes = decompressed(raw, file);
  if (extname(named).toLowerCase() === '.parquet' || looksLikeParquet(bytes)) return readParquet(bytes, file);
  // A file of another type (.arrow, .xlsx, ...) is binary: its type is the news, not its encoding.
  const typeOrThrow = (e: unknown) => {
    if (e instanceof EncodingError && !TEXT_DATA_EXTENSIONS.includes(extname(named).toLowerCase())) return parseContainer('', file, named);
    throw e;
  };
  let body: Uint8Array;
  try {
    body = checkedUtf8(bytes, file);
  } catch (e) {
    return typeOrThrow(e);
  }
  const fromBytes = readFromBytes(body, file, named, bytes.length <= wholeText);
  if (fromBytes) return fromBytes;
  let text: string;
  try {
    text = textOfBody(body, file);
  } catch (e) {
    return typeOrThrow(e);
  }
  return parseContainer(text, file, named);
}
