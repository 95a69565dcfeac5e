// Reads a dataset file and picks its container by extension:
//   .jsonl .ndjson        JSON Lines
//   .json                 a JSON array of rows, or JSON Lines when the file
//                         starts with "{" (many ".json" datasets are JSONL)
//   .csv / .tsv           header row + rows (RFC 4180 quoting)
//   .txt .text .md        plain text, one document per paragraph
// Any other extension is sniffed: "[" -> JSON array, "{" -> JSON Lines.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { DataError } from '../../training/data.js';
import { readDelimited } from './csv.js';
import { readJsonArray } from './json-array.js';
import { readJsonl } from './jsonl.js';
import { stripBom, type ContainerRead } from './records.js';
import { readPlainText } from './text.js';

/** The file's text, or a DataError that names it and says what is wrong. */
export function readDataText(file: string): string {
  try {
    return stripBom(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not a file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new DataError(`cannot read data file ${file}: ${why}`);
  }
}

/** Parses dataset text by the file's extension (see above). */
export function parseContainer(text: string, file: string): ContainerRead {
  const ext = extname(file).toLowerCase();
  const first = text.trimStart()[0];
  switch (ext) {
    case '.jsonl':
    case '.ndjson':
      return readJsonl(text, file);
    case '.json':
      return first === '{' ? readJsonl(text, file) : readJsonArray(text, file);
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
      if (first === '{') return readJsonl(text, file);
      throw new DataError(`${file}: unknown data file type "${ext || '(no extension)'}"; use .jsonl, .json, .csv, .tsv or .txt`);
  }
}

export function readContainer(file: string): ContainerRead {
  return parseContainer(readDataText(file), file);
}
