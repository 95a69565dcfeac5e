// Reads a dataset file and picks its container by extension:
//   .jsonl .ndjson        JSON Lines
//   .json                 a JSON array of rows, or JSON Lines when the file
//                         starts with "{" (many ".json" datasets are JSONL)
//   .csv / .tsv           header row + rows (RFC 4180 quoting)
//   .txt .text .md        plain text, one document per paragraph
//   .parquet              Parquet (parquet.ts), also sniffed by its magic number
// Any of them may be compressed: NAME.jsonl.gz, NAME.csv.zst (decompress.ts).
// Any other extension is sniffed: "[" -> JSON array, "{" -> JSON Lines.
// JSON Lines and plain text are read from the file a line at a time, at any
// size (line-file.ts); the others whole, into one buffer (file-chunks.ts
// readDataBytes: up to 4 GiB, past that refused saying what to do), CSV / TSV
// from the bytes (csv-bytes.ts), and so are JSON arrays past one string's
// size (json-array-bytes.ts). containerOfBytes reads any of them from bytes
// in hand, with the same rows and problems.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { constants } from 'node:buffer';
import { extname } from 'node:path';
import { readDelimited } from './csv.js';
import { readDelimitedBytes } from './csv-bytes.js';
import { readJsonArray } from './json-array.js';
import { readJsonArrayBytes } from './json-array-bytes.js';
import { readJsonl, readJsonlBytes, refuseSpreadObjects } from './jsonl.js';
import { checkedUtf8, EncodingError, firstCharacter, textOfBody } from './decode-text.js';
import { readDataBytes } from './file-chunks.js';
import { refuseLfsPointer } from './lfs-pointer.js';
import { readLineFile } from './line-file.js';
import { sinkInto, type ContainerKind, type ContainerRead } from './records.js';
import { readPlainText } from './text.js';
import { looksLikeParquet, readParquet } from './parquet.js';
import { decompressed, innerName } from './decompress.js';
import { encodingOrTypeError, unknownTypeError } from './unknown-type.js';

export { readDataBytes };

/**
 * JSON Lines, refusing with a clear error a file whose objects are
 * pretty-printed over several lines: read line by line, not one line parses,
 * and "no parseable rows" would not say why.
 */
function readJsonLines(text: string, file: string): ContainerRead {
  const read = readJsonl(text, file);
  if (read.records.length === 0 && read.problems.length > 0) refuseSpreadObjects(text, file);
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
      return readPlainText(text, file);
    default:
      throw unknownTypeError(file, named);
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

/** A data file's rows and problems: JSON Lines and plain text a line at a time, other containers whole. */
export async function readContainer(file: string): Promise<ContainerRead> {
  const read: ContainerRead = { kind: 'jsonl', records: [], problems: [] };
  const lines = await readLineFile(file, (kind) => {
    read.kind = kind;
    return sinkInto(read);
  });
  return lines ? read : containerOfBytes(readDataBytes(file), file);
}

/**
 * The rows of a data file whose bytes are in hand (the containers
 * readLineFile leaves to it, read whole: readContainer, tokenized-file.ts;
 * the tests hold the line reader to it). CSV / TSV, and JSON Lines and JSON
 * arrays of more text than one string can hold (`wholeText`: V8's limit,
 * 512 MiB; tests lower it), are read from the bytes a record, a line or an
 * element at a time, with the same records and problems as the text readers.
 */
export async function containerOfBytes(raw: Buffer, file: string, wholeText = constants.MAX_STRING_LENGTH): Promise<ContainerRead> {
  const named = innerName(file);
  refuseLfsPointer(raw, raw.length, file);
  const bytes = decompressed(raw, file);
  if (extname(named).toLowerCase() === '.parquet' || looksLikeParquet(bytes)) return readParquet(bytes, file);
  // A file of another type (.arrow, .xlsx, ...) is binary: its type is the news, not its encoding.
  const typeOrThrow = (e: unknown): never => {
    throw e instanceof EncodingError ? encodingOrTypeError(e, file, named) : e;
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
