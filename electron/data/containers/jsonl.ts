// JSON Lines: one JSON value per line; blank lines are skipped.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { malformed, type ContainerRead, type SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';

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
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    yield bytes.toString('utf8', start, end);
    start = end + 1;
  }
}

function readJsonlLines(lines: Iterable<string>, file: string): ContainerRead {
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  let line = 1;
  for (const raw of lines) {
    if (raw.trim() !== '') {
      try {
        records.push({ line, value: JSON.parse(raw) });
      } catch (e) {
        problems.push(malformed(file, line, `not valid JSON (${(e as Error).message})`));
      }
    }
    line++;
  }
  return { kind: 'jsonl', records, problems };
}
