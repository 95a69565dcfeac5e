// JSON Lines and plain text read from the file a line at a time
// (containers/line-file.ts) give what the whole-buffer reader
// (read-file.ts containerOfBytes on the file's bytes) gives for the same
// bytes: the same records and problems by line, or the same error, whatever
// the chunks the file arrives in (down to one byte: lines, CRLF and
// characters of 2-4 bytes cut between chunks), for compressed files too, and
// with the whole reader's order among errors. A file past 2 GiB (sparse: a
// few MiB on disk) loads; readFileSync refused it.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../engine/load.js';
import { readLineFile, type LineFileOptions } from './containers/line-file.js';
import { containerOfBytes, readContainer } from './containers/read-file.js';
import { sinkInto, type ContainerRead } from './containers/records.js';
import { Paragraphs } from './containers/text.js';

const dir = mkdtempSync(join(tmpdir(), 'ps-line-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FIXTURES = join(packageRoot(), 'electron', 'data', 'testing', 'fixtures');

/** `bytes` written as `name` in the test folder. */
function fileOf(name: string, bytes: Uint8Array | string): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

/** What a read came to: its value, or the message of the error it threw. */
async function outcome<T>(read: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await read();
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The file read a line at a time (null: left to the whole reader). */
function byLines(file: string, options: LineFileOptions = {}): Promise<ContainerRead | null | { error: string }> {
  return outcome(async () => {
    const read: ContainerRead = { kind: 'jsonl', records: [], problems: [] };
    const lines = await readLineFile(file, (kind) => {
      read.kind = kind;
      return sinkInto(read);
    }, options);
    if (lines) expect([lines.records, lines.problems]).toEqual([read.records.length, read.problems.length]);
    return lines ? read : null;
  });
}

/** The file's bytes read whole, as before. */
const whole = (file: string) => outcome(() => containerOfBytes(readFileSync(file), file));

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Rows with what can go wrong at line ends and inside lines: CRLF, blank lines, a bad row, characters of 2 to 4 bytes, U+2028 and U+FEFF, no final newline. */
const ROWS = [
  '{"prompt": "héllo", "completion": " wörld"}',
  '',
  '   ',
  '{"prompt": "€ and 𝄞", "completion": " ok"}\r',
  '{"prompt": "broken", ',
  '{"text": "a\u2028b"}',
  '\r',
  '\ufeff{"text": "a BOM inside the file is text"}',
  '{"text": "\ufeff"}   ',
  '{"text": "last, without a newline"}',
].join('\n');
const PARAGRAPHS = 'First para\r\nsecond line é\n\n\n  \r\nSecond 𝄞 para\r\n\nThird\n€';
const CHUNK_SIZES = [1, 2, 3, 4, 5, 7, 64, undefined];

describe('a file read a line at a time', () => {
  it("gives the whole reader's records and problems at every chunk size (JSON Lines by name or by its first character, plain text)", async () => {
    const cases: [string, Buffer, number, number[]][] = [
      ['rows.jsonl', Buffer.from(ROWS), 5, [5, 8]],
      ['rows.ndjson', Buffer.concat([BOM, Buffer.from(ROWS)]), 5, [5, 8]],
      ['rows.jsonl', Buffer.from(ROWS + '\n'), 5, [5, 8]],
      ['rows.json', Buffer.from(ROWS), 5, [5, 8]],
      ['rows', Buffer.from('\n \t' + ROWS), 5, [6, 9]],
      ['notes.txt', Buffer.concat([BOM, Buffer.from(PARAGRAPHS)]), 3, []],
      ['notes.md', Buffer.from(PARAGRAPHS + '\n\n'), 3, []],
      ['empty.jsonl', Buffer.alloc(0), 0, []],
      ['blank.jsonl', Buffer.from('\n \r\n\n'), 0, []],
    ];
    for (const [name, bytes, records, problemLines] of cases) {
      const file = fileOf(name, bytes);
      const expected = await whole(file);
      // what the whole reader says, so that agreeing with it means something
      expect(expected, name).toMatchObject({ records: { length: records }, problems: problemLines.map((line) => ({ line })) });
      for (const chunkBytes of CHUNK_SIZES) expect(await byLines(file, { chunkBytes }), `${name} in chunks of ${chunkBytes}`).toEqual(expected);
      expect(await readContainer(file)).toEqual(expected);
    }
  });

  it('agrees with the whole reader with each awkward piece at every byte of the file (characters cut, bad bytes, line ends)', async () => {
    // every piece, at every byte position (inside characters too), lands before, inside and after each chunk's cut
    const base = Buffer.from('{"a": "é€"}\r\n{"b": 𝄞}\n\n{"c": "x"}');
    const pieces = ['é', '€', '𝄞', '\n', '\r\n', '\r', '\ufeff', ' ', '"', '{"d": 1}'].map((p) => Buffer.from(p));
    pieces.push(Buffer.from([0xe9]), Buffer.from([0xf0, 0x9f]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xc0, 0xaf]));
    const seen = { records: 0, problems: 0, errors: 0 };
    for (let at = 0; at <= base.length; at++) {
      for (const piece of pieces) {
        const file = fileOf('sweep.jsonl', Buffer.concat([base.subarray(0, at), piece, base.subarray(at)]));
        const expected = await whole(file);
        for (const chunkBytes of [1, 2, 3]) expect(await byLines(file, { chunkBytes }), `${JSON.stringify(readFileSync(file).toString('latin1'))} in chunks of ${chunkBytes}`).toEqual(expected);
        if ('error' in expected) seen.errors++;
        else {
          seen.records += expected.records.length;
          seen.problems += expected.problems.length;
        }
      }
    }
    // rows, broken rows and encoding errors all common, or the sweep tests little
    expect(seen.records).toBeGreaterThan(400);
    expect(seen.problems).toBeGreaterThan(400);
    expect(seen.errors).toBeGreaterThan(150);
  });

  it("refuses bad UTF-8 with checkedUtf8's line and byte, wherever the chunks cut", async () => {
    const lines = ['{"text": "ok"}', '{"text": "caf', '"}', '{"text": "after"}'];
    for (const bad of [[0xe9], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xff]]) {
      const bytes = Buffer.concat([Buffer.from(lines.slice(0, 2).join('\n')), Buffer.from(bad), Buffer.from(lines.slice(2).join('\n'))]);
      const file = fileOf('bad.jsonl', bytes);
      const expected = await whole(file);
      expect(expected).toEqual({ error: expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: not valid UTF-8 \\(byte 0x${bad[0].toString(16).toUpperCase()} at byte 14 of the line;`)) });
      for (const chunkBytes of CHUNK_SIZES) expect(await byLines(file, { chunkBytes })).toEqual(expected);
      // the same cut at the end of the file (no newline after it)
      const atEnd = fileOf('bad-end.jsonl', Buffer.concat([Buffer.from(lines[0] + '\n{"x": "'), Buffer.from(bad)]));
      for (const chunkBytes of CHUNK_SIZES) expect(await byLines(atEnd, { chunkBytes })).toEqual(await whole(atEnd));
    }
  });

  it("keeps the whole reader's order among errors: decompression, then encoding, then the rest", async () => {
    const badByte = Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n'), Buffer.from('{"text": "more"}\n'.repeat(200))]);
    // a gzip file cut short: the whole reader's decompression fails before it sees the bad byte on line 2
    // past the first 64 KiB the reader looks at before reading on, so the cut is met after the bad byte
    const gz = gzipSync(Buffer.concat([badByte, Buffer.from('{"text": "more"}\n'.repeat(5000))]));
    const cut = (bytes: Buffer) => bytes.subarray(0, bytes.length - 10);
    const cases: [string, Buffer, RegExp][] = [
      ['cut.jsonl.gz', cut(gz), /: cannot be decompressed \(gzip: unexpected end of file\)/],
      ['whole.jsonl.gz', gz, /\.gz:2: not valid UTF-8 \(byte 0xE9/],
      // UTF-16: the encoding, named before anything is parsed; in a cut gzip file, the cut first
      ['wide.jsonl', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"text": "a"}\n', 'utf16le')]), /the file is UTF-16 little-endian/],
      ['wide-cut.jsonl.gz', cut(gzipSync(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"text": "a"}\n'.repeat(500), 'utf16le')]))), /cannot be decompressed/],
      ['wide-no-bom', Buffer.from('{"text": "a"}\n'.repeat(20), 'utf16le'), /unknown data file type "\(no extension\)"/],
      // a name of no data type, sniffed as JSON Lines by its "{", is binary when it is not UTF-8: its type is the news
      ['rows.data', badByte, /unknown data file type "\.data"/],
      ['pointer.jsonl', Buffer.from('version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 12345\n'), /is a Git LFS pointer/],
      ['pretty.json', Buffer.from('{\n  "text": "a"\n}\n{\n  "text": "b"\n}\n'), /spread over several lines \(pretty-printed\)/],
      ['one.json', Buffer.from('{"text":\n "a",\n "b": 1}\n'), /a single JSON object spread over several lines/],
      ['not-gzip.jsonl.gz', Buffer.from('{"text": "plain"}\n'), /is named \.gz but does not hold gzip data/],
    ];
    for (const [name, bytes, message] of cases) {
      const file = fileOf(name, bytes);
      const expected = await whole(file);
      expect(expected, name).toEqual({ error: expect.stringMatching(message) });
      for (const chunkBytes of [1, 5, 4096, undefined]) expect(await byLines(file, { chunkBytes }), `${name} in chunks of ${chunkBytes}`).toEqual(expected);
    }
  });

  it('leaves other containers, and a file whose head does not tell its type, to the whole reader', async () => {
    const cases: [string, Buffer][] = [
      ['array.json', Buffer.from('[{"text": "a"},\n {"text": "b"}]')],
      ['rows.csv', Buffer.from('text\na\n')],
      // the first chunk read (1 MiB) is all white space
      ['spaces.json', Buffer.concat([Buffer.alloc(2.5 * 2 ** 20, 0x20), Buffer.from('{"text": "a"}\n')])],
      ['looks-like.jsonl', Buffer.from('PAR1 is how Parquet starts\n')],
    ];
    for (const [name, bytes] of cases) {
      const file = fileOf(name, bytes);
      expect(await byLines(file), name).toBeNull();
      expect(await readContainer(file), name).toEqual(await whole(file));
    }
    expect((await readContainer(join(dir, 'spaces.json'))).records).toEqual([{ line: 1, value: { text: 'a' } }]);
  });

  it('reads gzip and Zstandard files as the whole reader does, at every chunk size', async () => {
    for (const name of ['alpaca.jsonl.gz', 'alpaca.jsonl.zst']) {
      const file = join(FIXTURES, name);
      const expected = await whole(file);
      expect(expected).toMatchObject({ kind: 'jsonl', records: { length: 3 } });
      for (const chunkBytes of CHUNK_SIZES) expect(await byLines(file, { chunkBytes }), `${name} in chunks of ${chunkBytes}`).toEqual(expected);
    }
    const many = fileOf('many.jsonl.gz', gzipSync(Buffer.from(Array.from({ length: 5000 }, (_, i) => (i % 777 === 5 ? '{"broken": \n' : `{"text": "row ${i} é€𝄞"}\n`)).join(''))));
    expect(await byLines(many, { chunkBytes: 333 })).toEqual(await whole(many));
  });

  it('refuses a line longer than one string holds, naming it, without holding it; its bad bytes are still found', async () => {
    const limit = { maxLineBytes: 40 };
    const long = '{"text": "' + 'x'.repeat(60) + '"}';
    const file = fileOf('long.jsonl', `{"text": "a"}\n${long}\n{"text": "b"}\n`);
    for (const chunkBytes of CHUNK_SIZES) {
      expect(await byLines(file, { ...limit, chunkBytes })).toEqual({ error: `${file}:2: the line is more than 40 bytes (0.00 GiB), more than one string can hold here; a row of JSON Lines is one line: is the file one JSON array or object on a single line? Name a JSON array .json, or write one row per line` });
    }
    // a line of exactly the limit is read
    const fits = fileOf('fits.jsonl', `{"text": "${'y'.repeat(28)}"}\n`);
    expect(await byLines(fits, { ...limit, chunkBytes: 3 })).toEqual(await whole(fits));
    // a bad byte inside the long line (or a character cut by its end), or on a later line, is what the whole reader says
    const contents = [
      Buffer.concat([Buffer.from('{"a": 1}\n{"text": "' + 'é€𝄞'.repeat(5)), Buffer.from([0xe9]), Buffer.from('x'.repeat(50) + '"}\n')]),
      Buffer.concat([Buffer.from('{"text": "' + '𝄞'.repeat(12)), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('\n{"a": 1}\n')]),
      Buffer.concat([Buffer.from('{"text": "' + '€'.repeat(20)), Buffer.from([0xe2, 0x82])]),
      Buffer.concat([Buffer.from(long + '\n{"a": 1}\n{"b": "'), Buffer.from([0xc3]), Buffer.from('"}\n')]),
    ];
    for (const bytes of contents) {
      const bad = fileOf('long-bad.jsonl', bytes);
      const expected = await whole(bad);
      expect(expected).toEqual({ error: expect.stringMatching(/: not valid UTF-8 \(byte 0x/) });
      for (const chunkBytes of CHUNK_SIZES) expect(await byLines(bad, { ...limit, chunkBytes }), `${bytes.toString('latin1')} in chunks of ${chunkBytes}`).toEqual(expected);
    }
  });

  it('refuses a paragraph of plain text longer than one string holds, naming where it starts', () => {
    const read: ContainerRead = { kind: 'text', records: [], problems: [] };
    const paragraphs = new Paragraphs(sinkInto(read), 'notes.txt', 12);
    paragraphs.line('short', 1);
    paragraphs.line('', 2);
    paragraphs.line('four', 3);
    paragraphs.line('five!', 4); // "four\nfive!": 10 characters
    expect(() => paragraphs.line('x', 5)).not.toThrow(); // 12
    expect(() => paragraphs.line('y', 6)).toThrow('notes.txt:3: the paragraph that starts here runs past line 6 without a blank line and is more than one string can hold (12 characters)');
    expect(read.records).toEqual([{ line: 1, value: { text: 'short' } }]);
  });

  it('loads a JSON Lines file past 2 GiB (a sparse file: rows at its ends, lines of NUL bytes between)', async () => {
    // Lines of 1 MiB of NUL bytes are not JSON: each is a problem by its line. readFileSync refused the file ("greater than 2 GiB").
    const file = join(dir, 'past-2-GiB.jsonl');
    const line = 2 ** 20;
    const nulLines = 2 * 1024 + 2;
    const first = '{"text": "first"}\n';
    const last = '{"text": "last, é"}\n';
    const fd = openSync(file, 'w');
    try {
      writeSync(fd, first, 0);
      for (let k = 1; k <= nulLines; k++) writeSync(fd, '\n', first.length + k * line - 1);
      writeSync(fd, last, first.length + nulLines * line);
    } finally {
      closeSync(fd);
    }
    expect(statSync(file).size).toBeGreaterThan(2 ** 31);
    let notJson = '';
    try {
      JSON.parse('\0'.repeat(line - 1));
    } catch (e) {
      notJson = (e as Error).message;
    }
    const read = await readContainer(file);
    expect(read.records).toEqual([{ line: 1, value: { text: 'first' } }, { line: nulLines + 2, value: { text: 'last, é' } }]);
    expect(read.problems).toHaveLength(nulLines);
    expect(read.problems[0]).toEqual({ source: `${file}:2`, line: 2, kind: 'malformed', reason: `not valid JSON (${notJson})` });
    expect(read.problems.map((p) => p.line)).toEqual(Array.from({ length: nulLines }, (_, i) => i + 2));
    rmSync(file);
  }, 60_000);
});
