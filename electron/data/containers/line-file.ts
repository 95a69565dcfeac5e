// JSON Lines and plain text read from the file a line at a time, at any
// size: the file is never held whole (readFileSync stopped at 2 GiB, and a
// 1.8 GB file cost 1.8 GB before any row existed), each line is checked,
// decoded and handed on (jsonl.ts parseJsonlLine, text.ts Paragraphs), and
// the rows and problems go to a sink as they are found (the loader tokenizes
// each row as it comes: tokenized-file.ts).
//
// What comes out is what read-file.ts containerOfBytes gives for the same
// bytes, errors included, and in the same order of precedence, so a file
// read this way cannot load differently from one read whole:
// - a decompression error first (the whole reader decompresses before all
//   else): a compressed file is read to its end after any other error;
// - then the first byte that is not UTF-8, by line (decode-text.ts
//   checkedUtf8 checks the whole text before any row is parsed): after a
//   row's or the sink's error the rest is still checked, not parsed;
// - then the container's errors and the sink's (the format: load-dataset.ts).
// A file whose type is not a line container, or cannot be told from its
// head (its first chunks, at least 64 KiB), gets null: read-file.ts reads it
// whole, and so says what it is.
// Gzip is decompressed as it is read; Zstandard whole (decompress.ts says why).
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { constants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { extname } from 'node:path';
import { DataError } from '../../training/data.js';
import { EncodingError, firstCharacter, hasUtf8Bom, invalidUtf8Error, textOfBody, checkedUtf8, wideEncodingError } from './decode-text.js';
import { decompressed, decompressedChunks, innerName, isCompressed } from './decompress.js';
import { CHUNK_BYTES, fileChunks, openDataFile, readDataBytes, sizeInWords } from './file-chunks.js';
import { parseJsonlLine, refuseSpreadObjects } from './jsonl.js';
import { refuseLfsPointer } from './lfs-pointer.js';
import type { RecordSink } from './records.js';
import { Paragraphs } from './text.js';
import { encodingOrTypeError } from './unknown-type.js';
import { Utf8Lines } from './utf8-lines.js';

export type LineKind = 'jsonl' | 'text';

export interface LineFileRead {
  kind: LineKind;
  /** sha256 of the file's bytes as read (the token cache's key), when asked for */
  sha256: string | null;
  /** records and problems handed to the sink */
  records: number;
  problems: number;
}

export interface LineFileOptions {
  /** hash the file's bytes as they are read (LineFileRead.sha256) */
  hash?: boolean;
  /** bytes read at a time (tests: a few, so lines and characters are cut between chunks) */
  chunkBytes?: number;
  /** the longest line decoded (one string's size; tests lower it) */
  maxLineBytes?: number;
}

/** Bytes looked at before reading on (in whole chunks, so at least one): enough for the encoding sniff (4 KiB) and the first character after any white space. */
const HEAD_BYTES = 64 * 1024;
/** Extensions read whole (read-file.ts): their records span lines, or they are binary. */
const WHOLE_EXTENSIONS = ['.csv', '.tsv', '.tab', '.parquet'];

/**
 * The file read a line at a time when it is JSON Lines or plain text, its
 * rows and problems handed to the sink `sinkFor` gives for its kind; null
 * (nothing handed on) when read-file.ts is to read it whole.
 */
export async function readLineFile(file: string, sinkFor: (kind: LineKind) => RecordSink, options: LineFileOptions = {}): Promise<LineFileRead | null> {
  const named = innerName(file);
  const ext = extname(named).toLowerCase();
  if (WHOLE_EXTENSIONS.includes(ext)) return null;
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const opened = await openDataFile(file);
  let chunks: AsyncGenerator<Buffer> | null = null;
  try {
    refuseLfsPointer(opened.start, opened.size, file);
    const hash = options.hash ? createHash('sha256') : null;
    chunks = decompressedChunks(fileChunks(opened, chunkBytes, hash), opened.start, opened.size, file, chunkBytes);
    const head = await readHead(chunks);
    // bytes that may be Parquet (they start with its magic number) are left to the whole reader, which tells
    if (head.bytes.subarray(0, 4).toString('latin1') === 'PAR1') return null;
    const wide = wideEncodingError(head.bytes, file);
    const bom = hasUtf8Bom(head.bytes) ? 3 : 0;
    const kind = wide ? null : lineKind(ext, head.bytes.subarray(bom), head.complete);
    if (!wide && !kind) return null;
    const reading = new Reading(file, kind ?? 'jsonl', sinkFor(kind ?? 'jsonl'), options.maxLineBytes);
    reading.encodingError = wide;
    let bytes = head.bytes.length;
    // the head as it was read, chunk by chunk, without the BOM
    for (let at = 0, i = 0; i < head.pieces.length; at += head.pieces[i++].length) reading.push(head.pieces[i].subarray(Math.max(0, bom - at)));
    let next = head.complete ? null : await chunks.next();
    // a compressed file is decompressed to its end whatever else went wrong: a decompression error comes first
    while (next && !next.done && !(reading.encodingError && !isCompressed(file))) {
      bytes += next.value.length;
      reading.push(next.value);
      next = await chunks.next();
    }
    reading.end();
    if (reading.encodingError) throw encodingOrTypeError(reading.encodingError, file, named);
    if (reading.later) throw reading.later.error;
    // the whole reader's check of a file of which no line parsed: only a file whose text fits one string gets it
    if (kind === 'jsonl' && reading.records === 0 && reading.problems > 0 && bytes <= constants.MAX_STRING_LENGTH) refuseSpreadObjects(wholeText(file), file);
    reading.finish();
    return { kind: kind!, sha256: hash ? hash.digest('hex') : null, records: reading.records, problems: reading.problems };
  } finally {
    // a read left before its end (whole reader, or an encoding error) ends its decompressor too
    await chunks?.return(undefined).catch(() => {});
    await opened.handle.close().catch(() => {});
  }
}

/** The first HEAD_BYTES of the data (all of it when shorter: `complete`), and the chunks they came in. */
async function readHead(chunks: AsyncIterator<Buffer>): Promise<{ bytes: Buffer; pieces: Buffer[]; complete: boolean }> {
  const pieces: Buffer[] = [];
  let length = 0;
  let complete = false;
  while (length < HEAD_BYTES && !complete) {
    const next = await chunks.next();
    if (next.done) complete = true;
    else {
      pieces.push(next.value);
      length += next.value.length;
    }
  }
  return { bytes: Buffer.concat(pieces, length), pieces, complete };
}

/** The line container of a file (read-file.ts containerKind's rules), or null when it is another or cannot be told from its head. */
function lineKind(ext: string, body: Uint8Array, complete: boolean): LineKind | null {
  switch (ext) {
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    case '.txt':
    case '.text':
    case '.md':
      return 'text';
    default:
      // .json and names of no data type: JSON Lines when the text starts with "{"
      return firstCharacter(body, complete) === '{' ? 'jsonl' : null;
  }
}

/** The decoded text of a file already read once line by line (so valid), for the whole reader's checks. */
function wholeText(file: string): string {
  return textOfBody(checkedUtf8(decompressed(readDataBytes(file), file), file), file);
}

/** One file's lines on their way to the sink, and the errors met, kept in their order of precedence (see above). */
class Reading {
  encodingError: EncodingError | null = null;
  /** the first error of a row, the container or the sink: thrown once the rest is known to be UTF-8 */
  later: { error: unknown } | null = null;
  records = 0;
  problems = 0;
  private readonly lines: Utf8Lines;
  private readonly paragraphs: Paragraphs | null;
  private readonly counted: RecordSink;

  constructor(
    private readonly file: string,
    private readonly kind: LineKind,
    sink: RecordSink,
    maxLineBytes = constants.MAX_STRING_LENGTH,
  ) {
    this.counted = {
      record: (r) => {
        this.records++;
        sink.record(r);
      },
      problem: (p) => {
        this.problems++;
        sink.problem(p);
      },
    };
    this.paragraphs = kind === 'text' ? new Paragraphs(this.counted, file) : null;
    this.lines = new Utf8Lines(
      {
        line: (text, line) => this.attempt(() => (this.paragraphs ? this.paragraphs.line(text!, line) : parseJsonlLine(text!, line, file, this.counted))),
        overlong: (line) => this.attempt(() => {
          throw this.overlongError(line, maxLineBytes);
        }),
        invalid: (line, column, byte) => invalidUtf8Error(file, line, column, byte),
      },
      maxLineBytes,
    );
  }

  /** The next decompressed bytes (after the BOM, for the first). */
  push(bytes: Buffer): void {
    if (this.encodingError) return;
    try {
      this.lines.push(bytes);
    } catch (e) {
      this.caught(e);
    }
  }

  /** The end of the data: its last line. */
  end(): void {
    if (this.encodingError) return;
    try {
      this.lines.end();
    } catch (e) {
      this.caught(e);
    }
  }

  /** Every line read and checked, no error met: the last paragraph. */
  finish(): void {
    this.paragraphs?.end();
  }

  private caught(e: unknown): void {
    if (!(e instanceof EncodingError)) throw e;
    this.encodingError = e;
  }

  /** Runs a line's work; its error is kept, and the lines after it are only checked, not decoded. */
  private attempt(work: () => void): void {
    if (this.later) return;
    try {
      work();
    } catch (e) {
      this.later = { error: e };
      this.lines.decode = false;
    }
  }

  private overlongError(line: number, maxLineBytes: number): DataError {
    const what = this.kind === 'jsonl'
      ? 'a row of JSON Lines is one line: is the file one JSON array or object on a single line? Name a JSON array .json, or write one row per line'
      : 'split the text into lines';
    return new DataError(`${this.file}:${line}: the line is more than ${sizeInWords(maxLineBytes)}, more than one string can hold here; ${what}`);
  }
}
