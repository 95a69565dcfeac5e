// CSV (RFC 4180) and TSV: the first record is the header (column names), each
// later record one row, an object of strings keyed by column. Fields may be
// quoted with "; inside quotes, "" is a quote and commas, tabs and line breaks
// are data. TSV uses the same rules with a tab as the delimiter (what Python's
// csv module and pandas write). Line breaks are LF or CRLF. A row's line is
// the physical line it starts on, so rows with quoted line breaks still point
// at the right place.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { DataError } from '../../training/data.js';
import { malformed, type ContainerRead, type SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';
import { countOf } from '../../text/plural.js';

interface RawCsvRecord {
  line: number;
  fields: string[];
  /** set when the record could not be parsed */
  error?: string;
}

/** Splits CSV text into records of fields (no header handling). */
export function parseDelimited(text: string, delimiter: ',' | '\t'): RawCsvRecord[] {
  const out: RawCsvRecord[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const record: RawCsvRecord = { line, fields: [] };
    let field = '';
    let atRecordEnd = false;
    while (!atRecordEnd) {
      if (text[i] === '"') {
        // Quoted field: runs to the next lone quote.
        const openLine = line;
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (!closed) {
          record.error ??= `a quoted field opened on line ${openLine} is never closed (a missing " ?)`;
          atRecordEnd = true;
          record.fields.push(field);
          break;
        }
        const next = text[i];
        if (i < n && next !== delimiter && next !== '\n' && next !== '\r') {
          record.error ??= `unexpected text after a closing quote (a quote inside a quoted field must be written "")`;
          // resynchronise at the end of the field
          while (i < n && text[i] !== delimiter && text[i] !== '\n') i++;
        }
      } else {
        while (i < n && text[i] !== delimiter && text[i] !== '\n') {
          if (text[i] === '"') record.error ??= 'a quote inside an unquoted field (quote the whole field and write the quote as "")';
          field += text[i];
          i++;
        }
        if (field.endsWith('\r') && (i >= n || text[i] === '\n')) field = field.slice(0, -1);
      }
      record.fields.push(field);
      field = '';
      if (i < n && text[i] === '\r' && text[i + 1] === '\n') i++;
      if (i >= n || text[i] === '\n') {
        atRecordEnd = true;
        if (i < n) line++;
      }
      i++;
    }
    // A blank line is no record.
    if (!(record.fields.length === 1 && record.fields[0] === '' && !record.error)) out.push(record);
  }
  return out;
}

export function readDelimited(text: string, file: string, kind: 'csv' | 'tsv'): ContainerRead {
  const delimiter = kind === 'csv' ? ',' : '\t';
  const raw = parseDelimited(text, delimiter);
  if (raw.length === 0) throw new DataError(`${file}: the file is empty; a ${kind.toUpperCase()} data file starts with a header row naming the columns (e.g. instruction${delimiter === ',' ? ',' : '<tab>'}output)`);
  const header = raw[0];
  if (header.error) throw new DataError(`${file}:${header.line}: the header row cannot be parsed: ${header.error}`);
  const columns = header.fields.map((f) => f.trim());
  const empty = columns.findIndex((c) => c === '');
  if (empty >= 0) throw new DataError(`${file}:${header.line}: column ${empty + 1} of the header row has no name; name every column`);
  const dup = columns.find((c, k) => columns.indexOf(c) !== k);
  if (dup !== undefined) throw new DataError(`${file}:${header.line}: the header names the column "${dup}" twice`);
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  for (const r of raw.slice(1)) {
    if (r.error) {
      problems.push(malformed(file, r.line, r.error));
    } else if (r.fields.length !== columns.length) {
      problems.push(malformed(file, r.line, `has ${countOf(r.fields.length, 'field')} but the header has ${columns.length} (${columns.join(', ')}); quote fields that contain "${delimiter === ',' ? ',' : '\\t'}"`));
    } else {
      const value: Record<string, string> = {};
      columns.forEach((c, k) => (value[c] = r.fields[k]));
      records.push({ line: r.line, value });
    }
  }
  return { kind, records, problems };
}
