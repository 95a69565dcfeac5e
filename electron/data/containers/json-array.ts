// A JSON file holding one array of rows. JSON.parse of the whole file would
// lose line numbers and stop at the first syntax error, so a small scanner
// finds where each top-level element starts and ends (tracking strings and
// nesting only), and every element is parsed on its own: a broken element is
// one skipped row with its line, the rest still load. A file of more text
// than one string can hold is scanned as bytes by json-array-bytes.ts, with
// these same rules and messages.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { DataError } from '../../training/data.js';
import { malformed, type ContainerRead, type SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';

export const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** What the scan says: said once, for the text reader here and the byte reader (json-array-bytes.ts). */
export const JSON_ARRAY_ERRORS = {
  notAnArray: (file: string, line: number, start: string) => new DataError(`${file}:${line}: a .json data file must hold one array of rows ([{...}, {...}]) or one JSON object per line; this one starts with ${JSON.stringify(start)}`),
  notClosed: (file: string, line: number) => new DataError(`${file}:${line}: the JSON array is not closed with "]" (is the file cut short?)`),
  elementRunsOn: (file: string, startLine: number) => new DataError(`${file}:${startLine}: the JSON array is not closed (an element starting here runs to the end of the file: an unclosed string, "{" or "["?)`),
  textAfterEnd: (file: string, line: number) => new DataError(`${file}:${line}: unexpected text after the closing "]" of the array`),
  stray: (c: string) => `a stray "${c}" that closes nothing (one "${c}" too many on the row before it?)`,
  /** why an element's text did not parse */
  badElement: (slice: string, e: unknown) => (slice.trim() === '' ? 'empty element (two commas in a row?)' : `not valid JSON (${(e as Error).message})`),
};

/**
 * Adds a problem unless the last one is on the same line: a line of stray
 * brackets or empty elements (",,,,") is one skipped row, so the list stays
 * bounded by the file's lines.
 */
export function problemPerLine(problems: RowProblem[], file: string): (line: number, reason: string) => void {
  return (line, reason) => {
    if (problems.length === 0 || problems[problems.length - 1].line !== line) problems.push(malformed(file, line, reason));
  };
}

/** How many characters of the text a "this one starts with" error quotes. */
export const QUOTED_START = 10;

/**
 * Whether a comma comes after `from`, past spaces and more closing brackets:
 * then the "]" before it is stray ("...]],\n{...}"), not the array's end.
 */
function commaFollows(text: string, from: number): boolean {
  let j = from;
  while (j < text.length && (isSpace(text.charCodeAt(j)) || text[j] === ']' || text[j] === '}')) j++;
  return text[j] === ',';
}

export function readJsonArray(text: string, file: string): ContainerRead {
  let i = 0;
  let line = 1;
  const skipSpace = () => {
    while (i < text.length && isSpace(text.charCodeAt(i))) {
      if (text.charCodeAt(i) === 0x0a) line++;
      i++;
    }
  };
  skipSpace();
  if (text[i] !== '[') {
    throw JSON_ARRAY_ERRORS.notAnArray(file, line, text.slice(i, i + QUOTED_START));
  }
  i++;
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  const problem = problemPerLine(problems, file);
  for (;;) {
    skipSpace();
    if (i >= text.length) throw JSON_ARRAY_ERRORS.notClosed(file, line);
    const c0 = text[i];
    if (c0 === ']' && !commaFollows(text, i + 1)) break;
    if (c0 === '}' || c0 === ']') {
      // A closing bracket with nothing open ("{...}}," or "[...]],"): skip it
      // (and the comma after it) so the scan always moves on and the rows
      // after it still load.
      problem(line, JSON_ARRAY_ERRORS.stray(c0));
      i++;
      skipSpace();
      if (text[i] === ',') i++;
      continue;
    }
    const startLine = line;
    const start = i;
    // Scan to the "," that ends this element at depth 0, or to a closing
    // bracket at depth 0 (the array's end, or a stray one handled above).
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '\n') line++;
      if (inString) {
        if (c === '\\') {
          i++;
          if (text[i] === '\n') line++; // a (bad) escaped line break still is a line
        } else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '[' || c === '{') depth++;
      else if (c === ']' || c === '}') {
        if (depth === 0) break;
        depth--;
      } else if (c === ',' && depth === 0) break;
    }
    if (i >= text.length) throw JSON_ARRAY_ERRORS.elementRunsOn(file, startLine);
    const slice = text.slice(start, i);
    try {
      records.push({ line: startLine, value: JSON.parse(slice) });
    } catch (e) {
      problem(startLine, JSON_ARRAY_ERRORS.badElement(slice, e));
    }
    if (text[i] === ',') i++;
  }
  i++;
  skipSpace();
  if (i < text.length) throw JSON_ARRAY_ERRORS.textAfterEnd(file, line);
  return { kind: 'json-array', records, problems };
}
