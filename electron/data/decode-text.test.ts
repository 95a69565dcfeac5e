// Data files must be UTF-8: a Latin-1 byte or a UTF-16 file is refused with
// the line, the byte and what to do, never decoded into U+FFFD tokens.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeDataBytes, firstInvalidUtf8 } from './containers/decode-text.js';
import { readContainer } from './containers/read-file.js';
import { Prng } from '../random/prng.js';

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const validByDecoder = (bytes: Uint8Array) => {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
};

describe('firstInvalidUtf8', () => {
  it('agrees with the WHATWG fatal decoder on random bytes, and everything before the offset decodes', () => {
    const rng = new Prng(7);
    const pick = (n: number) => rng.nextUint32() % n;
    // Valid UTF-8 of random code points (1 to 4 bytes each, edges included),
    // then half the time one byte replaced or the end cut off.
    const points = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff];
    const edits = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff];
    let invalid = 0;
    for (let t = 0; t < 4000; t++) {
      const text = Array.from({ length: 1 + pick(4) }, () => String.fromCodePoint(points[pick(points.length)])).join('');
      let bytes = new Uint8Array(Buffer.from(text, 'utf8'));
      if (pick(2) === 0) {
        if (pick(3) === 0) bytes = bytes.subarray(0, pick(bytes.length));
        else bytes[pick(bytes.length)] = edits[pick(edits.length)];
      }
      const bad = firstInvalidUtf8(bytes);
      expect(bad === -1).toBe(validByDecoder(bytes));
      if (bad >= 0) {
        invalid++;
        expect(validByDecoder(bytes.subarray(0, bad))).toBe(true);
      }
    }
    expect(invalid).toBeGreaterThan(1000);
    expect(invalid).toBeLessThan(2500);
  });
});

describe('decodeDataBytes', () => {
  it('names the line and the byte of a Latin-1 character', () => {
    const bytes = Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    expect(() => decodeDataBytes(bytes, 'd.jsonl')).toThrow(
      "d.jsonl:2: not valid UTF-8 (byte 0xE9 at byte 14 of the line; Latin-1 / Windows-1252 text looks like this): " +
      `save the file as UTF-8 ("Save as" with encoding UTF-8 in an editor, or: iconv -f WINDOWS-1252 -t UTF-8 'd.jsonl' > converted.jsonl)`);
  });

  it('recognises UTF-16 by its byte order mark or by its NUL bytes', () => {
    const text = '{"text": "hello"}\n{"text": "world"}\n';
    const le = Buffer.from(text, 'utf16le');
    const be = Buffer.from(le).swap16();
    expect(() => decodeDataBytes(Buffer.concat([Buffer.from([0xff, 0xfe]), le]), 'w.jsonl')).toThrow("w.jsonl: the file is UTF-16 little-endian (recognised by its byte order mark FF FE), not UTF-8; save the file as UTF-8 (\"Save as\" with encoding UTF-8 in an editor, or: iconv -f UTF-16 -t UTF-8 'w.jsonl' > converted.jsonl)");
    expect(() => decodeDataBytes(Buffer.concat([Buffer.from([0xfe, 0xff]), be]), 'w.jsonl')).toThrow(/the file is UTF-16 big-endian \(recognised by its byte order mark FE FF\)/);
    expect(() => decodeDataBytes(le, 'w.jsonl')).toThrow(/the file is UTF-16 little-endian \(recognised by a NUL byte after most characters\).*iconv -f UTF-16LE -t UTF-8/);
    expect(() => decodeDataBytes(be, 'w.jsonl')).toThrow(/the file is UTF-16 big-endian \(recognised by a NUL byte before most characters\).*iconv -f UTF-16BE -t UTF-8/);
  });

  it('keeps valid UTF-8 (with or without a byte order mark) as it is', () => {
    const text = '{"text": "café ✓ 🙂"}\n';
    expect(decodeDataBytes(Buffer.from(text), 'a.jsonl')).toBe(text);
    expect(decodeDataBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), 'a.jsonl')).toBe(text);
    // A real U+FFFD written in the file is valid UTF-8, not an error.
    expect(decodeDataBytes(Buffer.from('\ufffd'), 'a.jsonl')).toBe('\ufffd');
  });

  it('reaches the data loader: the file is refused, not trained on with replacement characters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-decode-'));
    const file = join(dir, 'latin1.csv');
    writeFileSync(file, Buffer.concat([Buffer.from('prompt,completion\nwho,Ren'), Buffer.from([0xe9]), Buffer.from('\n')]));
    await expect(readContainer(file)).rejects.toThrow(`${file}:2: not valid UTF-8 (byte 0xE9 at byte 8 of the line; `);
  });
});

describe('a binary file of another type', () => {
  it('is named by its type, not by its encoding', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-decode-'));
    const file = join(dir, 'data.arrow');
    writeFileSync(file, Buffer.from([0x41, 0x52, 0x52, 0x4f, 0x57, 0x31, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xd0, 0x0f, 0x96]));
    await expect(readContainer(file)).rejects.toThrow(`${file}: unknown data file type ".arrow"; use .jsonl, .json, .csv, .tsv, .txt or .parquet`);
  });
});
