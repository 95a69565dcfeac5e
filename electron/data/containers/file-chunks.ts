// A data file read a chunk at a time (line-file.ts: JSON Lines and plain
// text, at any size) or whole into one buffer (read-file.ts readDataBytes:
// the other containers, up to one buffer's size). Node's readFileSync stops
// at 2 GiB with a message that does not say what to do; both ways here read
// in pieces, and their errors name the file and say what to do.
import { constants } from 'node:buffer';
import type { Hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { DataError } from '../../training/data.js';

/** Bytes read at a time: large enough that a read's cost is the copy, small next to any file worth streaming. */
export const CHUNK_BYTES = 1 << 20;
/** The most bytes one Buffer holds here (4 GiB on 64-bit Node 20). */
export const MAX_BUFFER_BYTES = constants.MAX_LENGTH;
/** Bytes of a file read first, before its chunks: a compression's magic number, a Git LFS pointer (under 1 KiB). */
const START_BYTES = 1024;

/** The DataError of a file that cannot be opened or read. */
export function cannotReadError(file: string, e: unknown): DataError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not a file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
  return new DataError(`cannot read data file ${file}: ${why}`);
}

/** "2.50 GiB" */
export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** What to do with a file that is read whole and is too large for that: JSON Lines is read a line at a time, and a folder of files is one dataset. */
export const SPLIT_OR_CONVERT = 'convert it to JSON Lines (.jsonl, or .jsonl.gz: read a line at a time, at any size), or split it into several files in one folder and give the folder (a folder of files is one dataset, its files read in order)';

/** "4,294,967,297 bytes (4.00 GiB)": exact, and readable. */
export function sizeInWords(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} bytes (${gib(bytes)})`;
}

/** The DataError of a file whose container is read whole and which has more bytes than one buffer holds (`limit`). */
export function tooLargeError(file: string, size: number, limit: number, what = SPLIT_OR_CONVERT): DataError {
  return new DataError(`${file}: is ${sizeInWords(size)}, more than one buffer holds here (${sizeInWords(limit)}), and a file of its type is read into one; ${what}`);
}

/** An open data file: its size and its first bytes (up to 1 KiB). */
export interface OpenedDataFile {
  file: string;
  handle: FileHandle;
  size: number;
  start: Buffer;
}

/** Opens `file` for reading, or a DataError naming it (no such file, a folder, ...). */
export async function openDataFile(file: string): Promise<OpenedDataFile> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    throw cannotReadError(file, e);
  }
  try {
    const stat = await handle.stat();
    // Linux opens a folder for reading; reading it is what fails
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    const start = Buffer.alloc(Math.min(stat.size, START_BYTES));
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    return { file, handle, size: stat.size, start: start.subarray(0, bytesRead) };
  } catch (e) {
    await handle.close().catch(() => {});
    throw cannotReadError(file, e);
  }
}

/**
 * The file's bytes from its start to its end, `chunkBytes` at a time (each
 * chunk a buffer of its own: a reader may keep a piece of it), each also fed
 * to `hash` when given.
 */
export async function* fileChunks(opened: OpenedDataFile, chunkBytes: number, hash: Hash | null): AsyncGenerator<Buffer> {
  for (let at = 0; ;) {
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let bytesRead: number;
    try {
      ({ bytesRead } = await opened.handle.read(chunk, 0, chunkBytes, at));
    } catch (e) {
      throw cannotReadError(opened.file, e);
    }
    if (bytesRead === 0) return;
    const piece = chunk.subarray(0, bytesRead);
    hash?.update(piece);
    at += bytesRead;
    yield piece;
  }
}

/**
 * The file's bytes in one buffer, read in pieces (readFileSync stops at
 * 2 GiB); past `limit` (one buffer's size; tests lower it) a DataError that
 * names the file, its size and the limit, and says what to do.
 */
export function readDataBytes(file: string, limit = MAX_BUFFER_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw cannotReadError(file, e);
  }
  try {
    let size: number;
    try {
      const stat = fstatSync(fd);
      if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      size = stat.size;
    } catch (e) {
      throw cannotReadError(file, e);
    }
    if (size > limit) throw tooLargeError(file, size, limit);
    const bytes = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, bytes, at, Math.min(size - at, READ_PIECE_BYTES), at);
      } catch (e) {
        throw cannotReadError(file, e);
      }
      if (bytesRead === 0) break; // shrank meanwhile: what is there is the file
      at += bytesRead;
    }
    return at === size ? bytes : bytes.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}

/** One readSync's most: under the 2 GiB a single read may return. */
const READ_PIECE_BYTES = 1 << 30;
