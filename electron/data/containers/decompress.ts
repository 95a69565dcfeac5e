// Compressed data files, as datasets are often published: NAME.jsonl.gz
// (gzip) and NAME.jsonl.zst (Zstandard). The inner name (NAME.jsonl) picks
// the container; errors still name the file as given. A container read whole
// gets the bytes decompressed in memory (decompressed); one read a line at a
// time (line-file.ts) gets them a chunk at a time (decompressedChunks).
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { DataError } from '../../training/data.js';
import { MAX_BUFFER_BYTES, sizeInWords, tooLargeError } from './file-chunks.js';

interface Compression {
  suffix: string;
  name: string;
  magic: readonly number[];
  /** the bytes decompressed whole, refusing more than `limit` bytes of output */
  inflate: (bytes: Uint8Array, limit: number) => Uint8Array;
}

const GZIP: Compression = { suffix: '.gz', name: 'gzip', magic: [0x1f, 0x8b], inflate: (b, limit) => gunzipSync(b, { maxOutputLength: limit }) };
// fzstd takes no output limit: past one buffer's size its allocation throws a RangeError, caught below
const ZSTD: Compression = { suffix: '.zst', name: 'Zstandard', magic: [0x28, 0xb5, 0x2f, 0xfd], inflate: (b) => zstdDecompress(b) };
const COMPRESSIONS: readonly Compression[] = [GZIP, ZSTD];

function compressionOf(file: string): Compression | null {
  const lower = file.toLowerCase();
  return COMPRESSIONS.find((c) => lower.endsWith(c.suffix)) ?? null;
}

/** The name the container is picked by: without a compression suffix. */
export function innerName(file: string): string {
  const c = compressionOf(file);
  return c ? file.slice(0, file.length - c.suffix.length) : file;
}

/** Whether the file's name says it is compressed. */
export function isCompressed(file: string): boolean {
  return compressionOf(file) !== null;
}

/** Refuses a file named as compressed whose first bytes (`start`) are not the compression's magic number. */
function checkMagic(c: Compression, start: Uint8Array, file: string): void {
  if (start.length < c.magic.length || c.magic.some((m, i) => start[i] !== m)) {
    throw new DataError(`${file}: is named ${c.suffix} but does not hold ${c.name} data; rename it to what it is, or compress it again`);
  }
}

function damaged(c: Compression, file: string, e: unknown): DataError {
  return new DataError(`${file}: cannot be decompressed (${c.name}: ${(e as Error).message}); the file may be cut short or damaged: fetch it again`);
}

/** What to do with a compressed file too large to decompress in memory. */
const STREAM_INSTEAD = 'decompress it, or give its rows as JSON Lines compressed with gzip (.jsonl.gz), which is read a line at a time at any size; or split it into several files in one folder and give the folder (a folder of files is one dataset)';

/**
 * The file's data: its bytes decompressed when its name says they are
 * compressed. `limit`: the most bytes the data may have (one buffer's size;
 * tests lower it), past which it is refused saying what to do.
 */
export function decompressed(bytes: Uint8Array, file: string, limit = MAX_BUFFER_BYTES): Uint8Array {
  const c = compressionOf(file);
  if (!c) return bytes;
  checkMagic(c, bytes, file);
  try {
    return c.inflate(bytes, limit);
  } catch (e) {
    if (e instanceof RangeError) throw new DataError(`${file}: holds more than ${sizeInWords(limit)} once decompressed, more than one buffer holds here; ${STREAM_INSTEAD}`);
    throw damaged(c, file, e);
  }
}

/**
 * The file's data a chunk at a time: `raw` (the file's bytes from its
 * start; `start`: its first bytes, for the magic number) as they are, or
 * decompressed. Gzip through zlib's stream: the inflater gunzipSync runs,
 * with the same bytes and errors (the same on every cut of the test files,
 * at every chunk size tried). Zstandard is decompressed whole (`size`: the
 * file's, refused past one buffer) and handed on in pieces of `chunkBytes`:
 * fzstd's stream decoder refuses a file cut inside its final checksum, which
 * its whole decoder (decompressed, above) reads.
 */
export async function* decompressedChunks(raw: AsyncIterable<Buffer>, start: Uint8Array, size: number, file: string, chunkBytes: number): AsyncGenerator<Buffer> {
  const c = compressionOf(file);
  if (!c) {
    yield* raw;
    return;
  }
  checkMagic(c, start, file);
  if (c === GZIP) {
    yield* gunzipped(raw, file);
    return;
  }
  if (size > MAX_BUFFER_BYTES) throw tooLargeError(file, size, MAX_BUFFER_BYTES, `${c.name} files are decompressed in memory: ${STREAM_INSTEAD}`);
  const pieces: Buffer[] = [];
  for await (const chunk of raw) pieces.push(chunk);
  const data = decompressed(Buffer.concat(pieces), file);
  const whole = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at < whole.length; at += chunkBytes) yield whole.subarray(at, at + chunkBytes);
}

/** `raw` gunzipped; a read error (a DataError) passes through, an inflate error names the file as decompressed does. */
async function* gunzipped(raw: AsyncIterable<Buffer>, file: string): AsyncGenerator<Buffer> {
  const source = Readable.from(raw, { objectMode: false });
  const gunzip = createGunzip();
  // pipe() does not pass the source's error on: a read error ends the gunzip with it
  source.on('error', (e) => gunzip.destroy(e));
  source.pipe(gunzip);
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (e) {
    throw e instanceof DataError ? e : damaged(GZIP, file, e);
  } finally {
    source.destroy();
    gunzip.destroy();
  }
}
