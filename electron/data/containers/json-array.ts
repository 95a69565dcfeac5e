// A JSON file holding one array of rows. JSON.parse of the whole file would
// lose line numbers and stop at the first syntax error, so a small scanner
// finds where each top-level element starts and ends (tracking strings and
// nesting only), and every element is parsed on its own: a broken element is
// one skipped row with its line, the rest still load.
import { DataError } from '../../training/data.js';
import { malformed, type ContainerRead, type SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

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
    throw new DataError(`${file}:${line}: a .json data file must hold one array of rows ([{...}, {...}]) or one JSON object per line; this one starts with ${JSON.stringify(text.slice(i, i + 10))}`);
  }
  i++;
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  for (;;) {
    skipSpace();
    if (i >= text.length) throw new DataError(`${file}:${line}: the JSON array is not closed with "]" (is the file cut short?)`);
    if (text[i] === ']') break;
    const startLine = line;
    const start = i;
    // Scan to the "," or "]" that ends this element at depth 0.
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '\n') line++;
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '[' || c === '{') depth++;
      else if (c === ']' || c === '}') {
        if (depth === 0) break;
        depth--;
      } else if (c === ',' && depth === 0) break;
    }
    if (i >= text.length) throw new DataError(`${file}:${startLine}: the JSON array is not closed (an element starting here runs to the end of the file: an unclosed string, "{" or "["?)`);
    const slice = text.slice(start, i);
    try {
      records.push({ line: startLine, value: JSON.parse(slice) });
    } catch (e) {
      problems.push(malformed(file, startLine, slice.trim() === '' ? 'empty element (two commas in a row?)' : `not valid JSON (${(e as Error).message})`));
    }
    if (text[i] === ',') i++;
  }
  i++;
  skipSpace();
  if (i < text.length) throw new DataError(`${file}:${line}: unexpected text after the closing "]" of the array`);
  return { kind: 'json-array', records, problems };
}
