// Parquet files, as the Hugging Face hub serves most datasets (the
// "refs/convert/parquet" files, and datasets that ship only Parquet). Read
// with hyparquet (pure JavaScript) and its codecs (snappy, gzip, brotli,
// zstd, lz4): each row becomes an object of its columns, nested columns as
// nested values (a chat dataset's messages: list<struct<role, content>> is a
// list of {role, content} objects), exactly what a JSON Lines row would be.
//
// Values JSON cannot hold are converted so the formats see JSON-like rows:
// 64-bit integers (BigInt) become numbers when they are safe integers (token
// ids), else their decimal text (the format's field check then names them).
// Rows have no lines: a record's `line` is its 1-based row number.
//
// Only the columns some format reads are read (formats/row.ts ROW_FIELDS): a
// dataset with an embedding column would otherwise build millions of arrays
// nobody looks at (20,000 rows of 768 floats: +590 MiB of heap, 7 s).
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError } from '../../training/data.js';
import { ROW_FIELDS } from '../formats/row.js';
import type { ContainerRead, SourceRecord } from './records.js';

const MAGIC = 'PAR1';

/** Whether the bytes start and end with Parquet's magic number. */
export function looksLikeParquet(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  const text = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  return text(0) === MAGIC && text(bytes.length - 4) === MAGIC;
}

/** A value as a JSON row would hold it (see above). */
function jsonLike(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(jsonLike);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = jsonLike(v);
    return out;
  }
  return value;
}

export async function readParquet(bytes: Uint8Array, file: string): Promise<ContainerRead> {
  if (!looksLikeParquet(bytes)) {
    throw new DataError(`${file}: is not a Parquet file (it does not start and end with "PAR1"); the download may be incomplete: fetch it again, or give the data as .jsonl, .json, .csv or .txt`);
  }
  // the file's own buffer when the bytes are all of it (a large read is), else a copy of them
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const buffer = (whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as ArrayBuffer;
  const damaged = (e: unknown) => new DataError(`${file}: cannot be read as Parquet (${(e as Error).message.replace(/^parquet /, '')}); the file may be damaged: fetch it again, or convert it to .jsonl`);
  let metadata: ReturnType<typeof parquetMetadata>;
  let columns: string[];
  try {
    metadata = parquetMetadata(buffer);
    columns = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (e) {
    throw damaged(e);
  }
  const read = columns.filter((c) => ROW_FIELDS.includes(c));
  if (read.length === 0) {
    throw new DataError(`${file}: none of its columns (${columns.join(', ') || 'none'}) is one a dataset format reads. Expected alpaca (instruction, input, output), chat (messages or conversations), completion (prompt, completion), text (text) or pre-tokenized (input_ids); rename the columns`);
  }
  if (Number(metadata.num_rows) === 0) throw new DataError(`${file}: the Parquet file holds no rows`);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buffer, metadata, columns: read, compressors });
  } catch (e) {
    throw damaged(e);
  }
  const records: SourceRecord[] = rows.map((row, i) => ({ line: i + 1, value: jsonLike(row) }));
  return { kind: 'parquet', records, problems: [] };
}
