// CSV / TSV data files are read from their bytes (containers/csv-bytes.ts),
// a record at a time: the records, lines and problems of the text reader
// (csv.ts readDelimited on the decoded text) on every content tried, and a
// file of more text than one string can hold loads (it was refused with
// "split the file": V8's strings end at 512 MiB).
import { constants } from 'node:buffer';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readDelimited } from './containers/csv.js';
import { readDelimitedBytes } from './containers/csv-bytes.js';
import { decodeDataBytes } from './containers/decode-text.js';
import { containerOfBytes, parseContainer } from './containers/read-file.js';

/** What a read came to: its rows and problems, or the message of the error it threw. */
async function outcome(read: () => unknown): Promise<unknown> {
  try {
    return await read();
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The file read as it is (from its bytes), and its decoded text read by the text reader. */
async function bothWays(bytes: Buffer, name: string): Promise<{ fromBytes: unknown; fromText: unknown }> {
  const fromBytes = await outcome(() => containerOfBytes(bytes, name));
  const fromText = await outcome(() => parseContainer(decodeDataBytes(bytes, name), name));
  return { fromBytes, fromText };
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Quoted fields with commas and line breaks, doubled quotes, CRLF and a lone
 * CR, characters of 2 to 4 bytes next to quotes and delimiters, an empty
 * quoted field, blank lines, a malformed row in the middle (text after a
 * closing quote, a stray quote, a wrong width), no final newline.
 */
const EDGES = [
  'prompt,completion\r\n',
  '"Say ""hi"", then go","é€𝄞"\r\n',
  '"a\nquoted\r\nfield",plain\n',
  '\n',
  '\r\n',
  '"closed"junk,x\n',
  'bad "quote",x\n',
  'one field only\n',
  '"",""\n',
  '𝄞,"€,é"\n',
  '"cr\rinside",last',
].join('');

describe('CSV read from the bytes', () => {
  it("gives the text reader's records and problems on quoting edge cases (with a BOM, and as TSV)", async () => {
    const { fromBytes, fromText } = await bothWays(Buffer.from(EDGES), 'x.csv');
    expect(fromBytes).toEqual(fromText);
    // what both say, written out: rows at the line they start on, the broken ones by line
    expect(fromBytes).toEqual({
      kind: 'csv',
      records: [
        { line: 2, value: { prompt: 'Say "hi", then go', completion: 'é€𝄞' } },
        { line: 3, value: { prompt: 'a\nquoted\r\nfield', completion: 'plain' } },
        { line: 11, value: { prompt: '', completion: '' } },
        { line: 12, value: { prompt: '𝄞', completion: '€,é' } },
        { line: 13, value: { prompt: 'cr\rinside', completion: 'last' } },
      ],
      problems: [
        expect.objectContaining({ source: 'x.csv:8', line: 8, reason: expect.stringMatching(/^unexpected text after a closing quote/) }),
        expect.objectContaining({ source: 'x.csv:9', line: 9, reason: expect.stringMatching(/^a quote inside an unquoted field/) }),
        expect.objectContaining({ source: 'x.csv:10', line: 10, reason: expect.stringMatching(/^has 1 field but the header has 2 \(prompt, completion\)/) }),
      ],
    });
    const withBom = await bothWays(Buffer.concat([BOM, Buffer.from(EDGES)]), 'x.csv');
    expect(withBom.fromBytes).toEqual(withBom.fromText);
    expect(withBom.fromBytes).toEqual(fromBytes);
    const tsv = Buffer.from(EDGES.replaceAll(',', '\t'));
    for (const name of ['x.tsv', 'x.tab']) {
      const read = await bothWays(tsv, name);
      expect(read.fromBytes).toEqual(read.fromText);
      expect((read.fromBytes as { kind: string }).kind).toBe('tsv');
    }
  });

  it('agrees with the text reader with each awkward piece at every place of the file', async () => {
    // Fields and records are decoded from byte ranges cut at quotes, delimiters and line ends:
    // every piece below, put at every position, lands before, inside and after each such cut.
    const base = 'instruction,output\r\n"q ""x"", y",é\n"two\nlines",€\nlast,row';
    const pieces = ['𝄞', 'é', '€', '"', '""', ',', '\n', '\r', '\r\n', '\ufeff', ' '];
    let rows = 0;
    let broken = 0;
    for (let at = 0; at <= base.length; at++) {
      for (const piece of pieces) {
        const content = base.slice(0, at) + piece + base.slice(at);
        const { fromBytes, fromText } = await bothWays(Buffer.from(content), 'x.csv');
        expect(fromBytes, JSON.stringify(content)).toEqual(fromText);
        const read = fromBytes as { records?: unknown[]; problems?: unknown[] };
        rows += read.records?.length ?? 0;
        broken += read.problems?.length ?? 0;
      }
    }
    // both outcomes common, or the sweep tests little
    expect(rows).toBeGreaterThan(1000);
    expect(broken).toBeGreaterThan(200);
  });

  it('agrees with the text reader on a few hundred randomly damaged files', async () => {
    let seed = 20250611;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const words = ['plain', 'with, comma', 'say "hi"', 'two\nlines', 'crlf\r\nin', 'é€𝄞', '', ' '];
    const quoted = (f: string) => (/[",\n\r]/.test(f) || random() < 0.2 ? `"${f.replaceAll('"', '""')}"` : f);
    const noise = ['"', ',', '\n', '\r', '\r\n', '""', 'x', '𝄞'];
    let loaded = 0;
    for (let c = 0; c < 400; c++) {
      const lines = ['a,b,c'];
      for (let r = 0; r < 1 + Math.floor(random() * 6); r++) lines.push([pick(words), pick(words), pick(words)].map(quoted).join(','));
      let text = lines.join(random() < 0.5 ? '\n' : '\r\n');
      for (let d = Math.floor(random() * 4); d > 0; d--) {
        const at = Math.floor(random() * (text.length + 1));
        text = random() < 0.6 ? text.slice(0, at) + pick(noise) + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      const bytes = Buffer.from(text); // a surrogate cut in half becomes U+FFFD here, for both readers alike
      const { fromBytes, fromText } = await bothWays(bytes, 'fuzz.csv');
      expect(fromBytes, JSON.stringify(text)).toEqual(fromText);
      if (!('error' in (fromBytes as object))) loaded++;
    }
    expect(loaded).toBeGreaterThan(300);
  });

  it('refuses bad UTF-8 naming the line and byte, as decode-text.ts does', async () => {
    const bad = Buffer.concat([Buffer.from('prompt,completion\n"a\nb",caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
    const { fromBytes, fromText } = await bothWays(bad, 'x.csv');
    expect(fromBytes).toEqual(fromText);
    expect(fromBytes).toEqual({ error: expect.stringMatching(/^x\.csv:3: not valid UTF-8 \(byte 0xE9 at byte 7 of the line;/) });
  });

  it('reads a compressed CSV by its inner name, and refuses an empty file or a bad header as the text reader does', async () => {
    const gz = await containerOfBytes(gzipSync(Buffer.from(EDGES)), 'x.csv.gz');
    const plain = await containerOfBytes(Buffer.from(EDGES), 'x.csv');
    expect(gz.records).toEqual(plain.records);
    expect(gz.problems).toEqual(plain.problems.map((p) => ({ ...p, source: p.source.replace('x.csv', 'x.csv.gz') })));
    for (const text of ['', '\n\n', 'a,,b\n1,2,3\n', 'a,a\n1,2\n', '"open,b\n1,2\n']) {
      const { fromBytes, fromText } = await bothWays(Buffer.from(text), 'x.csv');
      expect(fromBytes).toEqual(fromText);
      expect(fromBytes).toEqual({ error: expect.stringMatching(/^x\.csv(:1)?: /) });
    }
  });

  it("decodes a field only when its record parsed: a quote left open to the end is a problem, not a string", () => {
    // the last record's field runs to the end of the file (the text reader makes it one string)
    const text = 'p,c\nok,1\nx,"open\n' + 'more,rows\n'.repeat(1000);
    const read = readDelimitedBytes(Buffer.from(text), 'x.csv', 'csv');
    expect(read).toEqual(readDelimited(text, 'x.csv', 'csv'));
    expect(read.records).toEqual([{ line: 2, value: { p: 'ok', c: '1' } }]);
    expect(read.problems.map((p) => [p.line, p.reason])).toEqual([[3, 'a quoted field opened on line 3 is never closed (a missing " ?)']]);
  });

  it('loads a file of more text than one string can hold (it was refused: "split the file")', async () => {
    // 512 MiB of spaces inside one field of a row of the wrong width: the row is a
    // problem, so its fields are never decoded, and the rows around it load
    const head = Buffer.from('prompt,completion\n"a ""b""",c\n"two\nlines",d\npad');
    const tail = Buffer.from(',x,y\n€,e\n');
    const padding = constants.MAX_STRING_LENGTH + 1;
    const bytes = Buffer.alloc(head.length + padding + tail.length, 0x20);
    head.copy(bytes, 0);
    tail.copy(bytes, head.length + padding);
    const read = await containerOfBytes(bytes, 'big.csv');
    expect(read.kind).toBe('csv');
    expect(read.records).toEqual([
      { line: 2, value: { prompt: 'a "b"', completion: 'c' } },
      { line: 3, value: { prompt: 'two\nlines', completion: 'd' } },
      { line: 6, value: { prompt: '€', completion: 'e' } },
    ]);
    expect(read.problems.map((p) => [p.source, p.reason])).toEqual([['big.csv:5', 'has 3 fields but the header has 2 (prompt, completion); quote fields that contain ","']]);
  });
});
