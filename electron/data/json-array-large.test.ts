// A JSON array of more text than one string can hold is read from its bytes
// an element at a time (containers/json-array-bytes.ts), with the records,
// lines and problems of the whole-text reader: shown by lowering the limit on
// files the whole-text path reads too, and by one file past V8's 512 MiB
// strings (it was refused with "split the file").
import { constants } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { readJsonArray } from './containers/json-array.js';
import { readJsonArrayBytes } from './containers/json-array-bytes.js';
import { containerOfBytes } from './containers/read-file.js';

/** What a read came to: its rows and problems, or the message of the error it threw. */
async function outcome(read: () => unknown): Promise<unknown> {
  try {
    return await read();
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The file read whole, and read from its bytes (the limit lowered below its size). */
async function bothWays(bytes: Buffer, name: string): Promise<{ fromBytes: unknown; whole: unknown }> {
  return { fromBytes: await outcome(() => containerOfBytes(bytes, name, 1)), whole: await outcome(() => containerOfBytes(bytes, name)) };
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Strings holding brackets, braces, commas and escaped quotes; \u escapes (a
 * surrogate pair too); nested objects and arrays; characters of 2 to 4 bytes;
 * CRLF; an element spread over lines; a malformed element in the middle; a
 * stray closing bracket (json-array-recovery.test.ts); an empty element.
 */
const EDGES = [
  '[\r\n',
  '  {"text": "a [b] {c}, \\"d\\"", "n": [1, {"m": [2, 3]}]},\r\n',
  '  {"u": "\\u00e9\\ud834\\udd1e", "raw": "é€𝄞"},\n',
  '  {"spread":\n     "over lines"},\n',
  '  {"broken": 1,},\n',
  '  {"after": "broken"}},\n',
  '  ,\n',
  '  "a string row", 42, null,\n',
  '  {"last": "\\\\"}\n',
  ']\n',
].join('');

describe('JSON array read from the bytes', () => {
  it("gives the whole-text reader's records and problems on the awkward cases (with a BOM, unnamed)", async () => {
    const { fromBytes, whole } = await bothWays(Buffer.from(EDGES), 'x.json');
    expect(fromBytes).toEqual(whole);
    // what both say, written out
    expect(whole).toEqual({
      kind: 'json-array',
      records: [
        { line: 2, value: { text: 'a [b] {c}, "d"', n: [1, { m: [2, 3] }] } },
        { line: 3, value: { u: 'é𝄞', raw: 'é€𝄞' } },
        { line: 4, value: { spread: 'over lines' } },
        { line: 7, value: { after: 'broken' } },
        { line: 9, value: 'a string row' },
        { line: 9, value: 42 },
        { line: 9, value: null },
        { line: 10, value: { last: '\\' } },
      ],
      problems: [
        expect.objectContaining({ source: 'x.json:6', line: 6, reason: expect.stringMatching(/^not valid JSON \(/) }),
        expect.objectContaining({ source: 'x.json:7', line: 7, reason: expect.stringMatching(/^a stray "\}" that closes nothing/) }),
        expect.objectContaining({ source: 'x.json:8', line: 8, reason: 'empty element (two commas in a row?)' }),
      ],
    });
    for (const [bytes, name] of [[Buffer.concat([BOM, Buffer.from(EDGES)]), 'x.json'], [Buffer.from(' \n' + EDGES), 'rows'], [Buffer.from(EDGES), 'rows.data']] as const) {
      const read = await bothWays(bytes, name);
      expect(read.fromBytes, name).toEqual(read.whole);
      expect((read.fromBytes as { records: unknown[] }).records, name).toHaveLength(8);
    }
  });

  it('picks the container by the first character as the text path does (past any white space JavaScript trims)', async () => {
    // no-break spaces and a second BOM before "{": JSON Lines (whose first line then is no JSON), not an array
    const jsonl = Buffer.from('\u00a0\ufeff\u2028{"a": 1}\n{"a": 2}\n');
    const read = await bothWays(jsonl, 'x.json');
    expect(read.fromBytes).toEqual(read.whole);
    expect(read.whole).toMatchObject({ kind: 'jsonl', records: [{ line: 2, value: { a: 2 } }], problems: [{ line: 1 }] });
    // ... and before "[" in a file of no known extension: an array, whose scan then stops at the first of them
    const array = await bothWays(Buffer.from('\u00a0[{"a": 1}]'), 'rows');
    expect(array.fromBytes).toEqual(array.whole);
    expect(array.whole).toEqual({ error: expect.stringMatching(/^rows:1: a \.json data file must hold one array of rows/) });
  });

  it('agrees with the whole-text reader with each awkward piece at every place of the file', async () => {
    // Elements are decoded from byte ranges cut at commas and brackets, strings are tracked by
    // their quotes and backslashes: every piece below, put at every position, lands before,
    // inside and after each of them (a backslash before a 4-byte character among them).
    const base = '[{"a": "x[y]{z},\\"q\\"é", "b": [1, {"c": null}]},\n{"u": "\\u20ac"}, 7\n]';
    const pieces = ['𝄞', 'é', '€', '"', '\\', '[', ']', '{', '}', ',', '\n', '\r\n', '\ufeff', ']]', '}}'];
    let rows = 0;
    let broken = 0;
    let refused = 0;
    // from 1: a "{" first makes a .json file JSON Lines, another reader
    for (let at = 1; at <= base.length; at++) {
      for (const piece of pieces) {
        const content = base.slice(0, at) + piece + base.slice(at);
        const { fromBytes, whole } = await bothWays(Buffer.from(content), 'x.json');
        expect(fromBytes, JSON.stringify(content)).toEqual(whole);
        const read = fromBytes as { records?: unknown[]; problems?: unknown[] };
        rows += read.records?.length ?? 0;
        broken += read.problems?.length ?? 0;
        if (!read.records) refused++;
      }
    }
    // every outcome common, or the sweep tests little
    expect(rows).toBeGreaterThan(1000);
    expect(broken).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(100);
  });

  it('agrees with the whole-text reader on a few hundred randomly damaged arrays', async () => {
    let seed = 20250612;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const noise = ['{', '}', '[', ']', ',', '"', ':', '\\', '\n', ' ', 'x', '}},', '],', ',,', '€', '𝄞'];
    const row = (k: number) => ({ text: `row ${k} "quoted" \\ back [é] {𝄞}`, n: k, tags: ['a', { b: [k, null] }] });
    let loaded = 0;
    for (let c = 0; c < 300; c++) {
      const rows = Array.from({ length: 1 + Math.floor(random() * 5) }, (_, k) => row(k));
      let text = random() < 0.5 ? JSON.stringify(rows, null, 2) : '[\n' + rows.map((r) => JSON.stringify(r)).join(',\n') + '\n]\n';
      for (let d = Math.floor(random() * 4); d > 0; d--) {
        const at = 1 + Math.floor(random() * text.length);
        text = random() < 0.6 ? text.slice(0, at) + pick(noise) + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      // a surrogate cut in half becomes U+FFFD here, for both readers alike
      const { fromBytes, whole } = await bothWays(Buffer.from(text), 'fuzz.json');
      expect(fromBytes, JSON.stringify(text)).toEqual(whole);
      if (!('error' in (fromBytes as object))) loaded++;
    }
    expect(loaded).toBeGreaterThan(100);
  });

  it('refuses what the whole-text reader refuses, with its words: not an array, not closed, text after it, bad UTF-8', async () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('\n"héllo wörld, 𝄞 and more"'), /^x\.json:2: a \.json data file must hold one array of rows .* this one starts with "\\"héllo wör"$/],
      [Buffer.from('[{"a": 1},\n{"a": "open'), /^x\.json:2: the JSON array is not closed \(an element starting here/],
      [Buffer.from('[{"a": 1},\n  '), /^x\.json:2: the JSON array is not closed with "\]"/],
      [Buffer.from('[{"a": 1}]\nx'), /^x\.json:2: unexpected text after the closing "\]"/],
      [Buffer.concat([Buffer.from('[{"a": 1},\n{"a": "caf'), Buffer.from([0xe9]), Buffer.from('"}]')]), /^x\.json:2: not valid UTF-8 \(byte 0xE9 at byte 11 of the line;/],
    ];
    for (const [bytes, message] of cases) {
      const { fromBytes, whole } = await bothWays(bytes, 'x.json');
      expect(fromBytes).toEqual(whole);
      expect(fromBytes).toEqual({ error: expect.stringMatching(message) });
    }
  });

  it('quotes the start of a file that is not an array as the text reader does, a character cut or not', async () => {
    // QUOTED_START characters: 4-byte characters are two of them, so the quote may end inside one
    for (const start of ['𝄞'.repeat(12), 'a' + '𝄞'.repeat(12), '€'.repeat(12), 'x']) {
      const fromText = await outcome(() => readJsonArray(start, 'x.json'));
      expect(fromText).toEqual({ error: expect.stringContaining('this one starts with') });
      expect(await outcome(() => readJsonArrayBytes(Buffer.from(start), 'x.json'))).toEqual(fromText);
    }
  });

  it('loads a file of more text than one string can hold (it was refused: "split the file")', async () => {
    // 512 MiB of spaces between two elements: the scan passes them without a string of them
    const head = Buffer.from('[\n{"text": "a [b], \\"c\\""},');
    const tail = Buffer.from('\n{"a": 2, oops},\n{"text": "é€𝄞"}\n]\n');
    const padding = constants.MAX_STRING_LENGTH + 1;
    const bytes = Buffer.alloc(head.length + padding + tail.length, 0x20);
    head.copy(bytes, 0);
    tail.copy(bytes, head.length + padding);
    const read = await containerOfBytes(bytes, 'big.json');
    expect(read.kind).toBe('json-array');
    expect(read.records).toEqual([
      { line: 2, value: { text: 'a [b], "c"' } },
      { line: 4, value: { text: 'é€𝄞' } },
    ]);
    let parseError = '';
    try {
      JSON.parse('{"a": 2, oops}');
    } catch (e) {
      parseError = (e as Error).message;
    }
    expect(read.problems.map((p) => [p.source, p.reason])).toEqual([['big.json:3', `not valid JSON (${parseError})`]]);
  });
});
