// Parquet data files, written here by an independent implementation (the
// Arrow Rust writer, testing/parquet-writer.ts): every codec the hub's files
// use reads back the rows written; nested chat messages and int64 token
// lists train exactly as the same rows in JSON Lines do (same ids, labels
// and report); several row groups keep their order; a null field, an id
// beyond 2^53, a truncated or damaged file are named by file, row and field.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundledDemoFiles } from '../demo/paths.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { DataError } from '../training/data.js';
import { readContainer } from './containers/read-file.js';
import { loadDataset } from './load-dataset.js';
import type { DatasetOptions } from './options.js';
import * as arrow from 'apache-arrow';
import { int64List, messageList, PARQUET_CODECS, utf8, writeParquet } from './testing/parquet-writer.js';

let dir: string;
let tokenizer: ModelTokenizer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ps-parquet-'));
  tokenizer = await ModelTokenizer.load(bundledDemoFiles().model);
});

const options = (over: Partial<DatasetOptions> = {}): DatasetOptions => ({ format: 'auto', seqLen: 128, completionOnly: true, pack: false, vocabSize: tokenizer.vocabSize, ...over });

const alpaca = [
  { instruction: 'Name a colour.', input: '', output: 'Blue.' },
  { instruction: 'Translate: chat', input: 'français → English, with ünïcödé and 😀', output: 'cat' },
  { instruction: 'Sum', input: null, output: '4' },
];
const alpacaColumns = () => ({
  instruction: { values: alpaca.map((r) => r.instruction), type: utf8() },
  input: { values: alpaca.map((r) => r.input), type: utf8() },
  output: { values: alpaca.map((r) => r.output), type: utf8() },
});

function jsonl(name: string, rows: unknown[]): string {
  const file = join(dir, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

describe('Parquet containers', () => {
  for (const codec of PARQUET_CODECS) {
    it(`reads back the rows written, ${codec}`, async () => {
      const file = writeParquet(join(dir, `alpaca-${codec}.parquet`), alpacaColumns(), { codec });
      const read = await readContainer(file);
      expect(read.kind).toBe('parquet');
      expect(read.problems).toEqual([]);
      expect(read.records).toEqual(alpaca.map((value, i) => ({ line: i + 1, value })));
    });
  }

  it('keeps the order over several row groups, with and without dictionary pages', async () => {
    const n = 1000;
    const text = Array.from({ length: n }, (_, i) => `row ${i % 7 === 0 ? 'repeated' : i}`);
    for (const dictionary of [true, false]) {
      const file = writeParquet(join(dir, `groups-${dictionary}.parquet`), { text: { values: text, type: utf8() } }, { rowGroupRows: 128, dictionary });
      const read = await readContainer(file);
      expect(read.records.map((r) => (r.value as { text: string }).text)).toEqual(text);
      expect(read.records.at(-1)?.line).toBe(n);
    }
  });

  it('reads only the columns a format reads: an embedding column is skipped', async () => {
    const file = writeParquet(join(dir, 'with-embedding.parquet'), {
      ...alpacaColumns(),
      id: { values: ['a1', 'a2', 'a3'], type: utf8() },
      embedding: { values: alpaca.map((_, i) => Array.from({ length: 8 }, (_, k) => i + k / 8)), type: new arrow.List(new arrow.Field('item', new arrow.Float32(), true)) },
    });
    const read = await readContainer(file);
    expect(read.records.map((r) => r.value)).toEqual(alpaca);
  });

  it('a file with another extension is recognised by its magic number', async () => {
    const file = writeParquet(join(dir, 'rows.bin'), alpacaColumns());
    expect((await readContainer(file)).kind).toBe('parquet');
  });
});

describe('Parquet datasets train exactly as the same rows in JSON Lines', () => {
  it('chat rows: messages as list<struct<role, content>>', async () => {
    const conversations = [
      [{ role: 'user', content: 'What color is the fox?' }, { role: 'assistant', content: 'white' }],
      [{ role: 'user', content: 'What color is the cat?' }, { role: 'assistant', content: 'grey' }, { role: 'user', content: 'And the dog?' }, { role: 'assistant', content: 'orange' }],
    ];
    const file = writeParquet(join(dir, 'chat.parquet'), { messages: { values: conversations, type: messageList() } }, { codec: 'ZSTD' });
    const fromParquet = await loadDataset(file, tokenizer, options());
    const fromJsonl = await loadDataset(jsonl('chat.jsonl', conversations.map((messages) => ({ messages }))), tokenizer, options());
    expect(fromParquet.report.format).toBe('chat');
    expect(fromParquet.examples.map((e) => [e.inputIds, e.labels])).toEqual(fromJsonl.examples.map((e) => [e.inputIds, e.labels]));
    expect(fromParquet.examples.length).toBe(2);
    expect(fromParquet.report.tokens).toEqual(fromJsonl.report.tokens);
  });

  it('pre-tokenized rows: input_ids as list<int64>', async () => {
    const ids = [[1, 20, 21, 22, 2], [1, 30, 31, 2]];
    const file = writeParquet(join(dir, 'ids.parquet'), { input_ids: { values: ids.map((r) => r.map(BigInt)), type: int64List() } });
    const fromParquet = await loadDataset(file, tokenizer, options());
    expect(fromParquet.report.format).toBe('tokenized');
    expect(fromParquet.examples.map((e) => Array.from(e.inputIds))).toEqual(ids);
    const fromJsonl = await loadDataset(jsonl('ids.jsonl', ids.map((input_ids) => ({ input_ids }))), tokenizer, options());
    expect(fromParquet.examples.map((e) => e.labels)).toEqual(fromJsonl.examples.map((e) => e.labels));
  });
});

describe('bad Parquet input is named by file, row and field', () => {
  it('a null required field skips that row, by row number', async () => {
    const file = writeParquet(join(dir, 'null-output.parquet'), {
      instruction: { values: ['a', 'b', 'c'], type: utf8() },
      output: { values: ['x', null, 'z'], type: utf8() },
    });
    const { report } = await loadDataset(file, tokenizer, options());
    expect(report.rows.used).toBe(2);
    expect(report.skipped).toEqual([expect.objectContaining({ source: `${file}:2`, reason: '"output" is null; it must be a string' })]);
  });

  it('a 64-bit id beyond 2^53 is kept as its text, and the row refused for it', async () => {
    const file = writeParquet(join(dir, 'huge-id.parquet'), { input_ids: { values: [[1n, 2n], [1n, 2n ** 60n]], type: int64List() } });
    const read = await readContainer(file);
    expect(read.records[1].value).toEqual({ input_ids: [1, String(2n ** 60n)] });
    const { report } = await loadDataset(file, tokenizer, options());
    expect(report.skipped.map((s) => s.source)).toEqual([`${file}:2`]);
  });

  it('a file with no column a format reads, and a file with no rows, are refused saying so', async () => {
    const other = writeParquet(join(dir, 'other-columns.parquet'), { question: { values: ['q'], type: utf8() }, answer: { values: ['a'], type: utf8() } });
    await expect(readContainer(other)).rejects.toThrow(`${other}: none of its columns (question, answer) is one a dataset format reads. Expected alpaca`);
    const empty = writeParquet(join(dir, 'empty.parquet'), { text: { values: [], type: utf8() } });
    await expect(readContainer(empty)).rejects.toThrow(`${empty}: the Parquet file holds no rows`);
  });

  it('a timestamp where text belongs is named as a timestamp', async () => {
    const file = writeParquet(join(dir, 'timestamp.parquet'), {
      prompt: { values: ['When?'], type: utf8() },
      completion: { values: [new Date(Date.UTC(2024, 0, 1))], type: new arrow.TimestampMillisecond() },
    });
    const { report } = await loadDataset(file, tokenizer, options({ format: 'completion' })).catch((e: Error) => ({ report: { skipped: [{ reason: e.message }] } }));
    expect(JSON.stringify(report.skipped)).toContain('\\"completion\\" must be a string, got a timestamp (2024-01-01T00:00:00.000Z)');
  });

  it('a Git LFS pointer in place of the file is named as one', async () => {
    const file = join(dir, 'lfs.parquet');
    writeFileSync(file, 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n');
    await expect(readContainer(file)).rejects.toThrow(`${file}: is a Git LFS pointer, not the data (the repository was cloned without Git LFS); run \`git lfs pull\` in it, or download the file itself`);
  });

  it('a truncated download and a damaged footer are refused naming the file', async () => {
    const good = readFileSync(writeParquet(join(dir, 'whole.parquet'), alpacaColumns()));
    const cut = join(dir, 'cut.parquet');
    writeFileSync(cut, good.subarray(0, good.length - 100));
    await expect(readContainer(cut)).rejects.toThrow(new DataError(`${cut}: is not a Parquet file (it does not start and end with "PAR1"); the download may be incomplete: fetch it again, or give the data as .jsonl, .json, .csv or .txt`));
    // the footer's length (the 4 bytes before the closing magic) pointing before the file's start
    const damaged = Buffer.from(good);
    damaged.writeUInt32LE(good.length * 2, good.length - 8);
    const file = join(dir, 'damaged.parquet');
    writeFileSync(file, damaged);
    await expect(readContainer(file)).rejects.toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot be read as Parquet \\(.+\\); the file may be damaged: fetch it again, or convert it to \\.jsonl$`));
  });
});
