// One token cache entry on disk: a tokenized file (tokenized-file.ts) as
//
//   "PSTOKENS" | u32 version | u32 header bytes | header JSON (space-padded to 4 bytes)
//   | Int32: line[n] meta[n] length[n] ids[T] labels[T] | sha256 of everything before
//
// (n records, T tokens; meta -1: the record's error is the header's next
// `errors` entry, else layout index * 2 + systemDropped). Integers are in the
// machine's byte order, which the header names: another order reads as no
// entry. decodeEntry gives null for anything that is not exactly such an
// entry for the expected key and version (cut short, bytes changed, another
// version or key): the caller tokenizes the file again, never uses a wrong row.
// A change to this layout needs token-cache.ts CACHE_VERSION bumped.
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { ContainerKind } from './containers/records.js';
import { DATASET_FORMATS, type DatasetFormat } from './options.js';
import type { ProblemKind } from './problems.js';
import type { FileProblem, RecordError, TokenizedFile, TokenizedRecord } from './tokenized-file.js';

const MAGIC = Buffer.from('PSTOKENS', 'latin1');
const PREAMBLE = MAGIC.length + 8;
const CHECKSUM = 32;
/** ids written per chunk: the entry is streamed, not built whole beside the rows it holds */
const CHUNK_INTS = 1 << 20;

interface EntryHeader {
  key: string;
  endianness: 'BE' | 'LE';
  kind: ContainerKind;
  format: DatasetFormat | null;
  layouts: string[];
  problems: FileProblem[];
  errors: RecordError[];
  records: number;
  tokens: number;
}

/** The entry's bytes, in pieces to write in order (their sum is the file; the last piece is the checksum). */
export function* entryChunks(key: string, version: number, file: TokenizedFile): Generator<Uint8Array> {
  const layouts: string[] = [];
  const errors: RecordError[] = [];
  let tokens = 0;
  for (const r of file.records) {
    if ('error' in r) errors.push(r.error);
    else {
      if (!layouts.includes(r.row.layout)) layouts.push(r.row.layout);
      tokens += r.row.inputIds.length;
    }
  }
  const header: EntryHeader = { key, endianness: endianness(), kind: file.kind, format: file.format, layouts, problems: file.problems, errors, records: file.records.length, tokens };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 4) * 4, 0x20);
  json.copy(padded);
  const preamble = Buffer.alloc(PREAMBLE);
  MAGIC.copy(preamble);
  preamble.writeUInt32LE(version, MAGIC.length);
  preamble.writeUInt32LE(padded.length, MAGIC.length + 4);
  const hash = createHash('sha256');
  const out = function* (piece: Uint8Array): Generator<Uint8Array> {
    hash.update(piece);
    yield piece;
  };
  yield* out(preamble);
  yield* out(padded);
  const meta = (r: TokenizedRecord) => ('error' in r ? -1 : layouts.indexOf(r.row.layout) * 2 + (r.row.systemDropped ? 1 : 0));
  const perRecord: ((r: TokenizedRecord) => number)[] = [(r) => r.line, meta, (r) => ('error' in r ? 0 : r.row.inputIds.length)];
  for (const field of perRecord) yield* out(asBytes(Int32Array.from(file.records, field)));
  for (const part of ['inputIds', 'labels'] as const) {
    let chunk = new Int32Array(CHUNK_INTS);
    let at = 0;
    for (const r of file.records) {
      if ('error' in r) continue;
      const values = r.row[part];
      for (let from = 0; from < values.length;) {
        const n = Math.min(values.length - from, CHUNK_INTS - at);
        chunk.set(values.subarray(from, from + n), at);
        at += n;
        from += n;
        if (at === CHUNK_INTS) {
          yield* out(asBytes(chunk));
          chunk = new Int32Array(CHUNK_INTS);
          at = 0;
        }
      }
    }
    if (at > 0) yield* out(asBytes(chunk.subarray(0, at)));
  }
  yield hash.digest();
}

/** Whether every line is an Int32 and every row has a label per id (an entry holds them so; anything else is not kept). The ids and labels are Int32Arrays already. */
export function fitsEntry(file: TokenizedFile): boolean {
  const int32 = (v: number) => Object.is(v | 0, v); // (not -0: it would read back as 0)
  return file.records.every((r) => int32(r.line) && ('error' in r || r.row.labels.length === r.row.inputIds.length));
}

function asBytes(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const CONCRETE_FORMATS: readonly DatasetFormat[] = DATASET_FORMATS.filter((f): f is DatasetFormat => f !== 'auto');
const KINDS: readonly ContainerKind[] = ['jsonl', 'json-array', 'csv', 'tsv', 'text', 'parquet'];
const PROBLEM_KINDS: readonly ProblemKind[] = ['malformed', 'missing-field', 'wrong-type', 'empty', 'template', 'vocabulary', 'nothing-to-learn'];
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isProblem = (p: unknown): p is FileProblem => {
  const o = p as FileProblem;
  return typeof o === 'object' && o !== null && isCount(o.line) && PROBLEM_KINDS.includes(o.kind) && typeof o.reason === 'string';
};
const isError = (e: unknown): e is RecordError => {
  const o = e as RecordError;
  return typeof o === 'object' && o !== null && PROBLEM_KINDS.includes(o.kind) && typeof o.message === 'string';
};

function headerOf(bytes: Buffer, key: string, version: number): { header: EntryHeader; body: number } | null {
  if (bytes.length < PREAMBLE + CHECKSUM || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  if (bytes.readUInt32LE(MAGIC.length) !== version) return null;
  const headerBytes = bytes.readUInt32LE(MAGIC.length + 4);
  if (headerBytes % 4 !== 0 || PREAMBLE + headerBytes + CHECKSUM > bytes.length) return null;
  const end = bytes.length - CHECKSUM;
  if (!createHash('sha256').update(bytes.subarray(0, end)).digest().equals(bytes.subarray(end))) return null;
  let h: EntryHeader;
  try {
    h = JSON.parse(bytes.subarray(PREAMBLE, PREAMBLE + headerBytes).toString('utf8')) as EntryHeader;
  } catch {
    return null;
  }
  const wellFormed = typeof h === 'object' && h !== null && h.key === key && h.endianness === endianness() && KINDS.includes(h.kind)
    && (h.format === null || (CONCRETE_FORMATS as readonly unknown[]).includes(h.format))
    && Array.isArray(h.layouts) && h.layouts.every((l) => typeof l === 'string')
    && Array.isArray(h.problems) && h.problems.every(isProblem) && Array.isArray(h.errors) && h.errors.every(isError)
    && isCount(h.records) && isCount(h.tokens) && (end - PREAMBLE - headerBytes) === 4 * (3 * h.records + 2 * h.tokens);
  return wellFormed ? { header: h, body: PREAMBLE + headerBytes } : null;
}

/** The tokenized file an entry holds, or null when `bytes` are not a whole, intact entry of `key` at `version`. */
export function decodeEntry(bytes: Buffer, key: string, version: number): TokenizedFile | null {
  const parsed = headerOf(bytes, key, version);
  if (!parsed) return null;
  const { header: h, body } = parsed;
  const n = h.records;
  // An Int32Array needs its start 4-byte aligned in memory; a file read into a pooled buffer may not be.
  const start = bytes.byteOffset + body;
  const ints = start % 4 === 0 ? new Int32Array(bytes.buffer, start, 3 * n + 2 * h.tokens) : new Int32Array(Uint8Array.from(bytes.subarray(body, bytes.length - CHECKSUM)).buffer);
  const lines = ints.subarray(0, n);
  const metas = ints.subarray(n, 2 * n);
  const lengths = ints.subarray(2 * n, 3 * n);
  const ids = ints.subarray(3 * n, 3 * n + h.tokens);
  const labels = ints.subarray(3 * n + h.tokens);
  const records: TokenizedRecord[] = new Array(n);
  let token = 0;
  let error = 0;
  for (let i = 0; i < n; i++) {
    const [line, meta, length] = [lines[i], metas[i], lengths[i]];
    if (line < 0) return null;
    if (meta === -1) {
      if (error >= h.errors.length || length !== 0) return null;
      records[i] = { line, error: h.errors[error++] };
      continue;
    }
    const layout = h.layouts[meta >> 1];
    if (meta < 0 || layout === undefined || length < 0 || token + length > h.tokens) return null;
    // views over the bytes read, not copies: the loader's examples share the entry's one buffer
    records[i] = { line, row: { inputIds: ids.subarray(token, token + length), labels: labels.subarray(token, token + length), layout, systemDropped: (meta & 1) === 1 } };
    token += length;
  }
  if (token !== h.tokens || error !== h.errors.length) return null;
  return { kind: h.kind, format: h.format, problems: h.problems, records };
}
