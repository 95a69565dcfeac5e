// JSON Lines of more text than one string can hold are read a line at a time
// (containers/jsonl.ts readJsonlBytes): the same records and problems as the
// whole-text reader, shown by lowering the limit on files the whole-text path
// reads too. (A 576 MiB file, past V8's 512 MiB strings, was refused with
// "split the file"; the lead's measurement of one is in the stop's note.)
import { describe, expect, it } from 'vitest';
import { checkedUtf8 } from './containers/decode-text.js';
import { indexOfNewline, readJsonl, readJsonlBytes } from './containers/jsonl.js';
import { containerOfBytes } from './containers/read-file.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Rows with what can go wrong at line ends: CRLF, blank lines, a bad row, characters of 2 to 4 bytes, U+2028 inside a string, no final newline. */
const TEXT = [
  '{"prompt": "héllo", "completion": " wörld"}',
  '',
  '   ',
  '{"prompt": "€ and 𝄞", "completion": " ok"}\r',
  '{"prompt": "broken", ',
  '{"text": "a\u2028b"}',
  '\r',
  '{"text": "last, without a newline"}',
].join('\n');

describe('JSON Lines read a line at a time', () => {
  it("the line reader gives the text reader's records and problems, byte offsets and all", () => {
    for (const bytes of [Buffer.from(TEXT), Buffer.concat([BOM, Buffer.from(TEXT)]), Buffer.from(TEXT + '\n'), Buffer.from('')]) {
      const text = new TextDecoder('utf-8').decode(bytes);
      expect(readJsonlBytes(checkedUtf8(bytes, 'x.jsonl'), 'x.jsonl')).toEqual(readJsonl(text, 'x.jsonl'));
    }
    // a view into a larger buffer (as the decompressor or the token cache hands them) reads only its own bytes
    const inner = Buffer.concat([Buffer.from('{"text": "before"}\n'), Buffer.from(TEXT), Buffer.from('\n{"text": "after"}')]);
    const view = inner.subarray(19, 19 + Buffer.byteLength(TEXT));
    expect(readJsonlBytes(view, 'x.jsonl')).toEqual(readJsonl(TEXT, 'x.jsonl'));
  });

  for (const [name, bytes] of [['x.jsonl', Buffer.from(TEXT)], ['x.ndjson', Buffer.concat([BOM, Buffer.from(TEXT)])], ['x.json', Buffer.from(TEXT)], ['rows', Buffer.from('\n ' + TEXT)]] as const) {
    it(`gives the whole-text reader's records and problems (${name})`, async () => {
      const whole = await containerOfBytes(bytes, name);
      const lines = await containerOfBytes(bytes, name, 10);
      expect(lines).toEqual(whole);
      expect(whole.records.length).toBe(4);
      expect(whole.problems.map((p) => p.line)).toEqual(name === 'rows' ? [6] : [5]);
    });
  }

  it('refuses bad UTF-8 naming the line, as the whole-text reader does', async () => {
    const bad = Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    const whole = await containerOfBytes(bad, 'x.jsonl').then(() => '', (e: Error) => e.message);
    const lines = await containerOfBytes(bad, 'x.jsonl', 10).then(() => '', (e: Error) => e.message);
    expect(whole).toMatch(/^x\.jsonl:2: not valid UTF-8 \(byte 0xE9/);
    expect(lines).toBe(whole);
  });

  it('leaves other formats to their own readers (a JSON array, CSV: the same records at any limit)', async () => {
    const array = Buffer.from('[{"text": "a"}, {"text": "b"}]');
    expect((await containerOfBytes(array, 'x.json', 10)).kind).toBe('json-array');
    const csv = Buffer.from('text\na\nb\n');
    expect(await containerOfBytes(csv, 'x.csv', 2)).toEqual(await containerOfBytes(csv, 'x.csv'));
  });

  it("finds a line's end past 2 GiB, where Node 20's Buffer.indexOf gives a negative position", () => {
    // never filled: only the pages written are memory
    const bytes = Buffer.allocUnsafeSlow(2 ** 31 + 2 ** 20);
    const at = 2 ** 31 + 5;
    bytes.fill(0x20, at - 3, at);
    bytes[at] = 0x0a;
    expect(indexOfNewline(bytes, at - 3)).toBe(at);
    expect(indexOfNewline(bytes, at)).toBe(at);
  });
});
