// A file read and tokenized a line at a time (tokenized-file.ts
// readAndTokenize: each record tokenized as it comes, once the first
// FORMAT_SAMPLE_ROWS have settled the format) gives what the whole-buffer
// reader and tokenizeFile give for the same bytes: every record's tokens and
// labels or error, the problems, the format, and the sha256 the token cache
// keys it by; and the same error, first, when the format cannot be told and
// a later line is not UTF-8.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelTokenizer } from '../models/tokenizer.js';
import { containerOfBytes } from './containers/read-file.js';
import type { ContainerRead } from './containers/records.js';
import { detectFormat, FORMAT_SAMPLE_ROWS } from './detect-format.js';
import { readAndTokenize, tokenizeFile, type FormatOf } from './tokenized-file.js';

const dir = mkdtempSync(join(tmpdir(), 'ps-read-tokenize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let tokenizer: ModelTokenizer;
beforeAll(async () => {
  tokenizer = await ModelTokenizer.load(resolve('resources/demo/model'));
});

/** The format as load-dataset.ts settles a single file's, recording what it was shown. */
function formatOfFile(file: string, shown: { records: number; sample: number }[]): FormatOf {
  return (records, read) => {
    shown.push({ records, sample: read.records.length });
    return detectFormat(read, file);
  };
}

/** The file read whole and tokenized, as the loader did before (or the error it threw). */
async function wholeWay(file: string): Promise<unknown> {
  try {
    const bytes = readFileSync(file);
    const read: ContainerRead = await containerOfBytes(bytes, file);
    const format = detectFormat(read, file);
    return { tokenized: tokenizeFile(read, read.records.length > 0 ? format : null, tokenizer, true, tokenizer.vocabSize), format, records: read.records.length, sha256: createHash('sha256').update(bytes).digest('hex'), rebuildable: true };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

async function lineWay(file: string, chunkBytes?: number, shown: { records: number; sample: number }[] = []): Promise<unknown> {
  try {
    return await readAndTokenize(file, formatOfFile(file, shown), tokenizer, true, tokenizer.vocabSize, true, { chunkBytes });
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Completion rows, a broken line every 97, alpaca rows (not completion: skipped by the format) past the sample, characters of 2-4 bytes. */
function rows(count: number, row: (i: number) => string = (i) => `{"prompt": "Q${i}: é€𝄞?", "completion": " A${i % 7}"}`): string {
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) {
    if (i % 97 === 0) lines.push('{"prompt": "broken');
    else if (i > FORMAT_SAMPLE_ROWS + 200 && i % 5 === 0) lines.push(`{"instruction": "I${i}", "output": "O"}`);
    else lines.push(row(i));
    if (i % 400 === 0) lines.push('');
  }
  return lines.join('\r\n');
}

describe('a file tokenized as it is read', () => {
  it('gives the whole read\'s tokens, problems, format and sha256, with a sample of the first rows settling the format', async () => {
    const file = join(dir, 'rows.jsonl');
    writeFileSync(file, rows(2600));
    const expected = await wholeWay(file);
    expect(expected).toMatchObject({ format: 'completion', records: 2600 - 26 });
    const errors = (expected as { tokenized: { records: object[] } }).tokenized.records.filter((r) => 'error' in r);
    expect(errors.length).toBeGreaterThan(200); // the alpaca rows, tokenized (and refused) after the sample
    for (const chunkBytes of [7, 4096, undefined]) {
      const shown: { records: number; sample: number }[] = [];
      expect(await lineWay(file, chunkBytes, shown), `chunks of ${chunkBytes}`).toEqual(expected);
      // the format was settled once, from the first FORMAT_SAMPLE_ROWS records only
      expect(shown).toEqual([{ records: FORMAT_SAMPLE_ROWS, sample: FORMAT_SAMPLE_ROWS }]);
    }
    // gzip, decompressed as it is read: the sha256 is of the file's own bytes, as the whole read's
    const gz = join(dir, 'rows.jsonl.gz');
    writeFileSync(gz, gzipSync(readFileSync(file)));
    const gzExpected = await wholeWay(gz);
    expect(gzExpected).toMatchObject({ format: 'completion', records: 2600 - 26 });
    expect(await lineWay(gz, 1000)).toEqual(gzExpected);
    // fewer rows than the sample: settled at the end, from all of them; plain text too
    const few = join(dir, 'few.jsonl');
    writeFileSync(few, rows(300));
    expect(await lineWay(few, 5)).toEqual(await wholeWay(few));
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'One para é\nstill one\n\nTwo 𝄞\r\n\r\nThree');
    expect(await lineWay(text, 3)).toEqual(await wholeWay(text));
    expect(await lineWay(text, 3)).toMatchObject({ format: 'text', records: 3 });
  });

  it("throws the whole read's error: the format that cannot be told, unless a later line is not UTF-8", async () => {
    // the first FORMAT_SAMPLE_ROWS rows have no field of any format: the sink's error waits for the rest to be checked
    const unknown = rows(FORMAT_SAMPLE_ROWS + 600, (i) => `{"question": "Q${i}", "answer": "A"}`);
    const cannotTell = join(dir, 'unknown.jsonl');
    writeFileSync(cannotTell, unknown);
    const told = await wholeWay(cannotTell);
    expect(told).toEqual({ error: expect.stringMatching(/: cannot tell the dataset format: its rows have the fields question, answer/) });
    expect(await lineWay(cannotTell, 4096)).toEqual(told);
    const badLater = join(dir, 'unknown-then-bad.jsonl');
    writeFileSync(badLater, Buffer.concat([Buffer.from(unknown), Buffer.from('\n{"question": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    const bad = await wholeWay(badLater);
    expect(bad).toEqual({ error: expect.stringMatching(/unknown-then-bad\.jsonl:\d+: not valid UTF-8 \(byte 0xE9 at byte 18 of the line/) });
    expect(await lineWay(badLater, 4096)).toEqual(bad);
    // no line parses: the format is settled at the end from all the problems, as the whole read does
    const broken = join(dir, 'broken.jsonl');
    writeFileSync(broken, '{"a": \n{"b": \n\n{"c"\n');
    const none = await wholeWay(broken);
    expect(none).toEqual({ error: expect.stringMatching(/: none of its 3 rows can be parsed, so its format cannot be told/) });
    expect(await lineWay(broken, 2)).toEqual(none);
  });

  it('reads other containers whole, with the same result', async () => {
    const csv = join(dir, 'rows.csv');
    writeFileSync(csv, 'prompt,completion\n"Q, é",A\n"two\nlines",B\nbad "quote",C\n');
    const expected = await wholeWay(csv);
    expect(expected).toMatchObject({ format: 'completion', records: 2 });
    expect(await lineWay(csv, 3)).toEqual(expected);
  });
});

describe('a row previewed from a file read a line at a time', () => {
  it("is the whole read's row of that number, its format told by the first rows", async () => {
    const file = join(dir, 'preview.jsonl');
    writeFileSync(file, rows(1300));
    const { previewRow } = await import('./preview.js');
    const read = await containerOfBytes(readFileSync(file), file);
    // rows numbered in file order, broken ones included
    // (an alpaca row is skipped by the format: it has no prompt)
    const entries = [...read.records.map((r) => ({ line: r.line, skipped: !('prompt' in (r.value as object)) })), ...read.problems.map((p) => ({ line: p.line, skipped: true }))].sort((a, b) => a.line - b.line);
    const options = { format: 'auto' as const, seqLen: 64, completionOnly: true, pack: false, vocabSize: tokenizer.vocabSize };
    for (const row of [1, 97, 98, 1000, 1005, 1250, entries.length]) {
      const preview = await previewRow(file, row, tokenizer, options);
      expect(preview, `row ${row}`).toMatchObject({ row, source: `${file}:${entries[row - 1].line}`, format: 'completion', status: entries[row - 1].skipped ? 'skipped' : 'used' });
    }
    expect(await previewRow(file, 1250, tokenizer, options)).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/prompt/) });
    expect(await previewRow(file, 97, tokenizer, options)).toMatchObject({ status: 'skipped', kind: 'malformed' });
    await expect(previewRow(file, entries.length + 1, tokenizer, options)).rejects.toThrow(`${file}: has ${entries.length} rows; row ${entries.length + 1} does not exist`);
  });
});
