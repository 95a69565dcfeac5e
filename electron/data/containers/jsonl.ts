// JSON Lines: one JSON value per line; blank lines are skipped. Read from
// the text, from its bytes (past one string's size), or from the file a line
// at a time (line-file.ts): each line goes through parseJsonlLine.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { DataError } from '../../training/data.js';
import { malformed, sinkInto, type ContainerRead, type RecordSink } from './records.js';

export function readJsonl(text: string, file: string): ContainerRead {
  return readJsonlLines(textLines(text), file);
}

/**
 * The same from UTF-8 bytes (checked, BOM skipped: decode-text.ts
 * checkedUtf8), one line decoded at a time: a file of more text than one
 * string can hold (V8's 512 MiB) is read all the same. Lines end at each
 * 0x0A byte, which in UTF-8 is never inside a character: the lines are the
 * text's, and so are the records and problems.
 */
export function readJsonlBytes(body: Uint8Array, file: string): ContainerRead {
  return readJsonlLines(byteLines(Buffer.from(body.buffer, body.byteOffset, body.byteLength)), file);
}

function* textLines(text: string): Generator<string> {
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    yield text.slice(start, end);
    start = end + 1;
  }
}

function* byteLines(bytes: Buffer): Generator<string> {
  let start = 0;
  while (start <= bytes.length) {
    let end = indexOfNewline(bytes, start);
    if (end < 0) end = bytes.length;
    yield bytes.toString('utf8', start, end);
    start = end + 1;
  }
}

/** The largest buffer whose positions Buffer.indexOf reports right: Node 20 gives one past 2 GiB as a negative int32. */
const INDEX_OF_SAFE_BYTES = 2 ** 31 - 1;
const SEARCH_WINDOW_BYTES = 2 ** 30;

/** bytes.indexOf(0x0A, from), also right in a buffer past 2 GiB (a decompressed file: up to 4 GiB), where it is searched a window at a time. */
export function indexOfNewline(bytes: Buffer, from: number): number {
  if (bytes.length <= INDEX_OF_SAFE_BYTES) return bytes.indexOf(0x0a, from);
  for (let at = from; at < bytes.length; at += SEARCH_WINDOW_BYTES) {
    const found = bytes.subarray(at, Math.min(at + SEARCH_WINDOW_BYTES, bytes.length)).indexOf(0x0a);
    if (found >= 0) return at + found;
  }
  return -1;
}

function readJsonlLines(lines: Iterable<string>, file: string): ContainerRead {
  const read: ContainerRead = { kind: 'jsonl', records: [], problems: [] };
  const sink = sinkInto(read);
  let line = 1;
  for (const raw of lines) parseJsonlLine(raw, line++, file, sink);
  return read;
}

/** Line `line` of a JSON Lines file: a record, a problem (not JSON), or nothing (blank). */
export function parseJsonlLine(raw: string, line: number, file: string, sink: RecordSink): void {
  if (raw.trim() === '') return;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    sink.problem(malformed(file, line, `not valid JSON (${(e as Error).message})`));
    return;
  }
  sink.record({ line, value });
}

/**
 * A file read as JSON Lines of which no line parsed (`text`: all of it)
 * refused with a clear error when its objects are pretty-printed over
 * several lines (or it is one object): "no parseable rows" would not say why.
 */
export function refuseSpreadObjects(text: string, file: string): void {
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
}
