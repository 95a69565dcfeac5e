// CSV / TSV read from the file's UTF-8 bytes: how every .csv / .tsv data file
// is read (read-file.ts), of any size, past one string's 512 MiB too. The rules
// are csv.ts's parseDelimited step for step, on bytes instead of characters:
// every character the rules look at (quote, delimiter, CR, LF) is one ASCII
// byte, and in UTF-8 no byte of a longer character is ever one of them, so
// the records, their lines and their errors are the text reader's. A field is
// kept as a byte range and decoded when its record turns out well formed, so
// at most one record's text is held beyond the rows, and a quote left open
// (which swallows the rest of the file) is never made into a string.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { bufferOf, textOfRange } from './decode-text.js';
import { CSV_ERRORS, rowsOfRecords, type DelimitedRecord } from './csv.js';
import type { ContainerRead } from './records.js';

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/** `body`: the bytes after the BOM, checked to be UTF-8 (decode-text.ts checkedUtf8). */
export function readDelimitedBytes(body: Uint8Array, file: string, kind: 'csv' | 'tsv'): ContainerRead {
  return rowsOfRecords(byteRecords(bufferOf(body), kind === 'csv' ? 0x2c : 0x09, file), file, kind);
}

/** The records of CSV bytes, one at a time, as parseDelimited finds them in the decoded text. */
function* byteRecords(bytes: Buffer, delimiter: number, file: string): Generator<DelimitedRecord> {
  const n = bytes.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const recordLine = line;
    // each field's bytes [starts[k], ends[k]); doubled[k]: it holds "" pairs that stand for one "
    const starts: number[] = [];
    const ends: number[] = [];
    const doubled: boolean[] = [];
    let error: string | undefined;
    let atRecordEnd = false;
    while (!atRecordEnd) {
      if (i < n && bytes[i] === QUOTE) {
        // Quoted field: runs to the next lone quote.
        const openLine = line;
        i++;
        const start = i;
        let pairs = false;
        let closed = false;
        while (i < n) {
          const c = bytes[i];
          if (c === QUOTE) {
            if (i + 1 < n && bytes[i + 1] === QUOTE) {
              pairs = true;
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === LF) line++;
          i++;
        }
        if (!closed) {
          error ??= CSV_ERRORS.unclosed(openLine);
          starts.push(start);
          ends.push(n);
          doubled.push(pairs);
          break;
        }
        starts.push(start);
        ends.push(i - 1);
        doubled.push(pairs);
        const next = bytes[i];
        if (i < n && next !== delimiter && next !== LF && next !== CR) {
          error ??= CSV_ERRORS.afterClosingQuote;
          // resynchronise at the end of the field
          while (i < n && bytes[i] !== delimiter && bytes[i] !== LF) i++;
        }
      } else {
        const start = i;
        while (i < n && bytes[i] !== delimiter && bytes[i] !== LF) {
          if (bytes[i] === QUOTE) error ??= CSV_ERRORS.quoteInUnquoted;
          i++;
        }
        // a CR before the line's LF (or the file's end) ends the line, it is not data
        const end = i > start && bytes[i - 1] === CR && (i >= n || bytes[i] === LF) ? i - 1 : i;
        starts.push(start);
        ends.push(end);
        doubled.push(false);
      }
      if (i < n && bytes[i] === CR && i + 1 < n && bytes[i + 1] === LF) i++;
      if (i >= n || bytes[i] === LF) {
        atRecordEnd = true;
        if (i < n) line++;
      }
      i++;
    }
    // A blank line is no record.
    if (starts.length === 1 && ends[0] === starts[0] && error === undefined) continue;
    const fields = () =>
      starts.map((start, k) => {
        const text = textOfRange(bytes, start, ends[k], () => `${file}:${recordLine}: field ${k + 1}`);
        return doubled[k] ? text.replaceAll('""', '"') : text;
      });
    yield { line: recordLine, error, width: starts.length, fields };
  }
}
