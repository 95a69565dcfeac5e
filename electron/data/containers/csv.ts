// CSV (RFC 4180) and TSV: the first record is the header (column names), each
// later record one row, an object of strings keyed by column. Fields may be
// quoted with "; inside quotes, "" is a quote and commas, tabs and line breaks
// are data. TSV uses the same rules with a tab as the delimiter (what Python's
// csv module and pandas write). Line breaks are LF or CRLF. A row's line is
// the physical line it starts on, so rows with quoted line breaks still point
// at the right place. A data file is read from its bytes by csv-bytes.ts,
// with these same rules and messages (read-file.ts: faster, a fraction of the
// memory, and past one string's size); this text reader reads text already
// in memory (parseContainer), and the byte reader is tested against it.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { DataError } from '../../training/data.js';
import { malformed, type ContainerRead, type SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';
import { countOf } from '../../text/plural.js';

/** Why a record cannot be parsed: said once, for the text reader here and the byte reader (csv-bytes.ts). */
export const CSV_ERRORS = {
  unclosed: (openLine: number) => `a quoted field opened on line ${openLine} is never closed (a missing " ?)`,
  afterClosingQuote: `unexpected text after a closing quote (a quote inside a quoted field must be written "")`,
  quoteInUnquoted: 'a quote inside an unquoted field (quote the whole field and write the quote as "")',
};

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
          record.error ??= CSV_ERRORS.unclosed(openLine);
          atRecordEnd = true;
          record.fields.push(field);
          break;
        }
        const next = text[i];
        if (i < n && next !== delimiter && next !== '\n' && next !== '\r') {
          record.error ??= CSV_ERRORS.afterClosingQuote;
          // resynchronise at the end of the field
          while (i < n && text[i] !== delimiter && text[i] !== '\n') i++;
        }
      } else {
        while (i < n && text[i] !== delimiter && text[i] !== '\n') {
          if (text[i] === '"') record.error ??= CSV_ERRORS.quoteInUnquoted;
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

/**
 * A parsed record as the row logic below needs it: its fields are asked for
 * only when the record parsed (the byte reader decodes them then, so a broken
 * record running to the end of a large file is never made into a string).
 */
export interface DelimitedRecord {
  line: number;
  /** set when the record could not be parsed */
  error?: string;
  /** how many fields it has */
  width: number;
  fields(): string[];
}

export function readDelimited(text: string, file: string, kind: 'csv' | 'tsv'): ContainerRead {
  const raw = parseDelimited(text, kind === 'csv' ? ',' : '\t');
  return rowsOfRecords(raw.map((r) => ({ line: r.line, error: r.error, width: r.fields.length, fields: () => r.fields })), file, kind);
}

/** The header's columns, then every later record as a row keyed by them, or as a problem by its line. */
export function rowsOfRecords(raw: Iterable<DelimitedRecord>, file: string, kind: 'csv' | 'tsv'): ContainerRead {
  const delimiter = kind === 'csv' ? ',' : '\t';
  const iterator = raw[Symbol.iterator]();
  const first = iterator.next();
  if (first.done) throw new DataError(`${file}: the file is empty; a ${kind.toUpperCase()} data file starts with a header row naming the columns (e.g. instruction${delimiter === ',' ? ',' : '<tab>'}output)`);
  const header = first.value;
  if (header.error) throw new DataError(`${file}:${header.line}: the header row cannot be parsed: ${header.error}`);
  const columns = header.fields().map((f) => f.trim());
  const empty = columns.findIndex((c) => c === '');
  if (empty >= 0) throw new DataError(`${file}:${header.line}: column ${empty + 1} of the header row has no name; name every column`);
  const dup = columns.find((c, k) => columns.indexOf(c) !== k);
  if (dup !== undefined) throw new DataError(`${file}:${header.line}: the header names the column "${dup}" twice`);
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  for (let next = iterator.next(); !next.done; next = iterator.next()) {
    const r = next.value;
    if (r.error) {
      problems.push(malformed(file, r.line, r.error));
    } else if (r.width !== columns.length) {
      problems.push(malformed(file, r.line, `has ${countOf(r.width, 'field')} but the header has ${columns.length} (${columns.join(', ')}); quote fields that contain "${delimiter === ',' ? ',' : '\\t'}"`));
    } else {
      const fields = r.fields();
      const value: Record<string, string> = {};
      columns.forEach((c, k) => (value[c] = fields[k]));
      records.push({ line: r.line, value });
    }
  }
  return { kind, records, problems };
}
