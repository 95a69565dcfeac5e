// Compressed data files, as datasets are often published: NAME.jsonl.gz
// (gzip) and NAME.jsonl.zst (Zstandard). The bytes are decompressed in
// memory and the inner name (NAME.jsonl) picks the container; errors still
// name the file as given.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { DataError } from '../../training/data.js';

interface Compression {
  suffix: string;
  name: string;
  magic: readonly number[];
  inflate: (bytes: Uint8Array) => Uint8Array;
}

const COMPRESSIONS: readonly Compression[] = [
  { suffix: '.gz', name: 'gzip', magic: [0x1f, 0x8b], inflate: (b) => gunzipSync(b) },
  { suffix: '.zst', name: 'Zstandard', magic: [0x28, 0xb5, 0x2f, 0xfd], inflate: (b) => zstdDecompress(b) },
];

function compressionOf(file: string): Compression | null {
  const lower = file.toLowerCase();
  return COMPRESSIONS.find((c) => lower.endsWith(c.suffix)) ?? null;
}

/** The name the container is picked by: without a compression suffix. */
export function innerName(file: string): string {
  const c = compressionOf(file);
  return c ? file.slice(0, file.length - c.suffix.length) : file;
}

/** The file's data: its bytes decompressed when its name says they are compressed. */
export function decompressed(bytes: Uint8Array, file: string): Uint8Array {
  const c = compressionOf(file);
  if (!c) return bytes;
  if (bytes.length < c.magic.length || c.magic.some((m, i) => bytes[i] !== m)) {
    throw new DataError(`${file}: is named ${c.suffix} but does not hold ${c.name} data; rename it to what it is, or compress it again`);
  }
  try {
    return c.inflate(bytes);
  } catch (e) {
    throw new DataError(`${file}: cannot be decompressed (${c.name}: ${(e as Error).message}); the file may be cut short or damaged: fetch it again`);
  }
}
