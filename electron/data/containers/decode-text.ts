// Turns a data file's bytes into text, refusing what is not UTF-8.
//
// Node's "utf8" decoding replaces every invalid byte with U+FFFD without a
// word, so a Latin-1 "é" (0xE9) became a replacement token in training, and a
// UTF-16 file reached the JSON parser as NUL-riddled text. A data file must be
// UTF-8 (a leading UTF-8 byte order mark is fine); anything else is refused
// with the line and byte, and the encoding when it can be recognised.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { constants, isUtf8 } from 'node:buffer';
import { extname } from 'node:path';
import { DataError } from '../../training/data.js';

/** A data file that is not UTF-8 text (a DataError: callers that report data errors report it as one). */
export class EncodingError extends DataError {
  constructor(message: string) {
    super(message);
    this.name = 'EncodingError';
  }
}

/** The first invalid byte of a UTF-8 byte sequence, or -1 when it is all valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i += 1;
      continue;
    }
    // Lead byte: its length, and the allowed range of the second byte
    // (excludes overlong forms, surrogates and code points above U+10FFFF).
    let length: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + length > n) return i;
    const second = bytes[i + 1];
    if (second < lo || second > hi) return i;
    for (let k = 2; k < length; k++) {
      const c = bytes[i + k];
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += length;
  }
  return -1;
}

/** What to do, with the command that converts the file (iconv is on every Linux and macOS). */
function saveAsUtf8(file: string, from: string): string {
  return `save the file as UTF-8 ("Save as" with encoding UTF-8 in an editor, or: iconv -f ${from} -t UTF-8 '${file}' > converted${extname(file)})`;
}

/** "UTF-16 little-endian" etc. (and iconv's name for it) when the bytes are recognisably UTF-16/32, else null. */
export function wideEncoding(bytes: Uint8Array): { name: string; how: string; iconv: string } | null {
  const b = bytes;
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) return { name: 'UTF-32 little-endian', how: 'its byte order mark FF FE 00 00', iconv: 'UTF-32' };
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) return { name: 'UTF-32 big-endian', how: 'its byte order mark 00 00 FE FF', iconv: 'UTF-32' };
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return { name: 'UTF-16 little-endian', how: 'its byte order mark FF FE', iconv: 'UTF-16' };
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return { name: 'UTF-16 big-endian', how: 'its byte order mark FE FF', iconv: 'UTF-16' };
  // No byte order mark: text of mostly ASCII characters in UTF-16 has a NUL
  // in every other byte. Look at the first 4 KiB.
  const n = Math.min(b.length, 4096) & ~1;
  if (n < 4) return null;
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < n; i += 2) {
    if (b[i] === 0) evenNul++;
    if (b[i + 1] === 0) oddNul++;
  }
  const pairs = n / 2;
  if (oddNul >= pairs * 0.4 && evenNul <= pairs * 0.05) return { name: 'UTF-16 little-endian', how: 'a NUL byte after most characters', iconv: 'UTF-16LE' };
  if (evenNul >= pairs * 0.4 && oddNul <= pairs * 0.05) return { name: 'UTF-16 big-endian', how: 'a NUL byte before most characters', iconv: 'UTF-16BE' };
  return null;
}

/**
 * The file's text (without a UTF-8 byte order mark), or a DataError naming
 * the file, the line and the byte that is not UTF-8, and what to do.
 */
export function decodeDataBytes(bytes: Uint8Array, file: string): string {
  return textOfBody(checkedUtf8(bytes, file), file);
}

/** The text of bytes checkedUtf8 passed, or a DataError when it is more than one string can hold. */
export function textOfBody(body: Uint8Array, file: string): string {
  if (body.length > constants.MAX_STRING_LENGTH) {
    throw new EncodingError(`${file}: ${Math.round(body.length / 2 ** 20)} MiB of text is more than one string can hold here (${Math.floor(constants.MAX_STRING_LENGTH / 2 ** 20)} MiB): split the file into smaller ones, or write it as JSON Lines (.jsonl), CSV or a JSON array, which are read a piece at a time`);
  }
  // ignoreBOM: the file's BOM is already skipped; a second one is text and stays
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(body);
}

/**
 * The text of bytes [start, end) of a body checkedUtf8 passed, cut where no
 * character is split (the large files' readers decode one field or element
 * at a time); a DataError saying where (`place()`: "f.csv:12: field 2") when
 * that one piece is more than one string can hold.
 */
export function textOfRange(body: Buffer, start: number, end: number, place: () => string): string {
  try {
    // Buffer's decoding keeps a U+FEFF inside the range, as TextDecoder with ignoreBOM does for the whole text
    return body.toString('utf8', start, end);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_STRING_TOO_LONG') throw e;
    throw new DataError(`${place()} is ${Math.round((end - start) / 2 ** 20)} MiB of text, more than one string can hold here (${Math.floor(constants.MAX_STRING_LENGTH / 2 ** 20)} MiB); is a quote or bracket left open before it?`);
  }
}

/** A Buffer over the same memory as `bytes` (checkedUtf8 hands back a Uint8Array view), for its fast search and decoding. */
export function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The EncodingError of bytes that are recognisably UTF-16/32 (wideEncoding), or null. */
export function wideEncodingError(bytes: Uint8Array, file: string): EncodingError | null {
  const wide = wideEncoding(bytes);
  return wide ? new EncodingError(`${file}: the file is ${wide.name} (recognised by ${wide.how}), not UTF-8; ${saveAsUtf8(file, wide.iconv)}`) : null;
}

/** The EncodingError of an invalid byte (`byte`) at 1-based `column` (in bytes) of `line`. */
export function invalidUtf8Error(file: string, line: number, column: number, byte: number): EncodingError {
  const hex = byte.toString(16).toUpperCase().padStart(2, '0');
  // (only bytes >= 0x80 can be invalid: a lone one is what Latin-1 / Windows-1252 text, the usual culprit, looks like)
  return new EncodingError(`${file}:${line}: not valid UTF-8 (byte 0x${hex} at byte ${column} of the line; Latin-1 / Windows-1252 text looks like this): ${saveAsUtf8(file, 'WINDOWS-1252')}`);
}

/** Whether the bytes start with a UTF-8 byte order mark (EF BB BF). */
export function hasUtf8Bom(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/** The bytes after a UTF-8 BOM, checked to be UTF-8 (else an EncodingError naming the line and what to do). */
export function checkedUtf8(bytes: Uint8Array, file: string): Uint8Array {
  const wide = wideEncodingError(bytes, file);
  if (wide) throw wide;
  const body = bytes.subarray(hasUtf8Bom(bytes) ? 3 : 0);
  // Node's own check first (native, ~10x faster); the byte-by-byte walk only to find where a bad file goes wrong
  const bad = isUtf8(body) ? -1 : firstInvalidUtf8(body);
  if (bad >= 0) {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < bad; i++) {
      if (body[i] === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    throw invalidUtf8Error(file, line, bad - lineStart + 1, body[bad]);
  }
  return body;
}

/**
 * The text's first character after white space (as `text.trimStart()[0]`),
 * decoding only as far as it; undefined when there is none. `complete`:
 * the bytes are the whole text; else (the head of a file) a character cut
 * at their end is left undecoded, and undefined means "not in these bytes".
 */
export function firstCharacter(body: Uint8Array, complete = true): string | undefined {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const piece = 4096;
  for (let at = 0; at < body.length; at += piece) {
    const text = decoder.decode(body.subarray(at, at + piece), { stream: true }).trimStart();
    if (text !== '') return text[0];
  }
  return complete ? decoder.decode().trimStart()[0] : undefined;
}
