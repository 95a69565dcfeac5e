// A JSON array of rows read from the file's UTF-8 bytes, for a file of more
// text than one string can hold (V8's 512 MiB: read-file.ts sends it here).
// The scan is json-array.ts's readJsonArray step for step, on bytes instead
// of characters: what it tracks (brackets, braces, commas, quotes, the
// backslash, white space, line breaks) is ASCII, and in UTF-8 no byte of a
// longer character is ever one of those, so the elements' bounds, lines and
// problems are the text reader's. Each element is decoded and parsed on its
// own, so at most one element's text is held beyond the rows.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { bufferOf, textOfRange } from './decode-text.js';
import { isSpace as isJsonSpace, JSON_ARRAY_ERRORS, problemPerLine, QUOTED_START } from './json-array.js';
import type { ContainerRead, SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';

// a local binding for the hot loops (an imported one is a property read per call under the test runner's module transform)
const isSpace = isJsonSpace;
const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;

/** Whether a comma comes after `from`, past spaces and more closing brackets (then the "]" before it is stray). */
function commaFollows(bytes: Buffer, from: number): boolean {
  let j = from;
  while (j < bytes.length && (isSpace(bytes[j]) || bytes[j] === CLOSE_SQUARE || bytes[j] === CLOSE_CURLY)) j++;
  return bytes[j] === COMMA;
}

/** Where the white space starting at `from` ends. */
function spaceEnd(bytes: Buffer, from: number): number {
  let j = from;
  while (j < bytes.length && isSpace(bytes[j])) j++;
  return j;
}

/** How many line breaks bytes [from, to) hold (a run of white space: short, so no search past it). */
function linesIn(bytes: Buffer, from: number, to: number): number {
  let count = 0;
  for (let j = from; j < to; j++) if (bytes[j] === LF) count++;
  return count;
}

/** `body`: the bytes after the BOM, checked to be UTF-8 (decode-text.ts checkedUtf8). */
export function readJsonArrayBytes(body: Uint8Array, file: string): ContainerRead {
  const bytes = bufferOf(body);
  const n = bytes.length;
  let i = 0;
  let line = 1;
  // (i is not closed over: the element scan below is the hot loop, and a local keeps it fast)
  const skipSpace = (from: number) => {
    const end = spaceEnd(bytes, from);
    line += linesIn(bytes, from, end);
    return end;
  };
  i = skipSpace(i);
  if (bytes[i] !== OPEN_SQUARE) {
    // QUOTED_START characters of UTF-16 take at most 3 bytes each; a character cut at the end decodes after them
    throw JSON_ARRAY_ERRORS.notAnArray(file, line, textOfRange(bytes, i, Math.min(n, i + 4 * QUOTED_START), () => file).slice(0, QUOTED_START));
  }
  i++;
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  const problem = problemPerLine(problems, file);
  for (;;) {
    i = skipSpace(i);
    if (i >= n) throw JSON_ARRAY_ERRORS.notClosed(file, line);
    const c0 = bytes[i];
    if (c0 === CLOSE_SQUARE && !commaFollows(bytes, i + 1)) break;
    if (c0 === CLOSE_CURLY || c0 === CLOSE_SQUARE) {
      // a closing bracket with nothing open: skipped, as the text reader does
      problem(line, JSON_ARRAY_ERRORS.stray(String.fromCharCode(c0)));
      i = skipSpace(i + 1);
      if (bytes[i] === COMMA) i++;
      continue;
    }
    const startLine = line;
    const start = i;
    // to the "," that ends this element at depth 0, or a closing bracket at depth 0
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const c = bytes[i];
      if (c === LF) line++;
      if (inString) {
        if (c === BACKSLASH) {
          // the escaped byte is skipped; one of a longer character is never syntax, so the next is scanned as usual
          i++;
          if (bytes[i] === LF) line++;
        } else if (c === QUOTE) inString = false;
        continue;
      }
      if (c === QUOTE) inString = true;
      else if (c === OPEN_SQUARE || c === OPEN_CURLY) depth++;
      else if (c === CLOSE_SQUARE || c === CLOSE_CURLY) {
        if (depth === 0) break;
        depth--;
      } else if (c === COMMA && depth === 0) break;
    }
    if (i >= n) throw JSON_ARRAY_ERRORS.elementRunsOn(file, startLine);
    const slice = textOfRange(bytes, start, i, () => `${file}:${startLine}: an element of the array`);
    try {
      records.push({ line: startLine, value: JSON.parse(slice) });
    } catch (e) {
      problem(startLine, JSON_ARRAY_ERRORS.badElement(slice, e));
    }
    if (bytes[i] === COMMA) i++;
  }
  i = skipSpace(i + 1);
  if (i < n) throw JSON_ARRAY_ERRORS.textAfterEnd(file, line);
  return { kind: 'json-array', records, problems };
}
