// Compressed data files: known files written by GNU gzip and the zstd CLI
// (testing/fixtures/, see its README) read exactly as the plain file they
// hold; a file named .gz that is not gzip, and a cut-short download, are
// refused naming the file.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../engine/load.js';
import { readContainer } from './containers/read-file.js';

const FIXTURES = join(packageRoot(), 'electron', 'data', 'testing', 'fixtures');
const fixture = (name: string) => join(FIXTURES, name);

describe('compressed data files', () => {
  it('NAME.jsonl.gz and NAME.jsonl.zst read as NAME.jsonl does', async () => {
    const plain = await readContainer(fixture('alpaca.jsonl'));
    expect(plain.records).toHaveLength(3);
    expect(plain.records[1].value).toEqual({ instruction: 'Translate: chat', input: 'français → English 😀', output: 'cat' });
    for (const name of ['alpaca.jsonl.gz', 'alpaca.jsonl.zst']) {
      const read = await readContainer(fixture(name));
      expect(read.kind, name).toBe('jsonl');
      expect(read.records, name).toEqual(plain.records);
    }
  });

  it('the inner name picks the container: NAME.csv.zst is CSV (a quoted field over two lines)', async () => {
    const read = await readContainer(fixture('sums.csv.zst'));
    expect(read.kind).toBe('csv');
    expect(read.records.map((r) => r.value)).toEqual([{ prompt: 'Q: 1+1?\nA:', completion: ' 2' }, { prompt: 'Q: 2+2?\nA:', completion: ' 4' }]);
    expect(read.records.map((r) => r.line)).toEqual([2, 4]);
  });

  it('refuses a file named .gz that holds no gzip data, and a cut-short download, naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-decompress-'));
    const notGzip = join(dir, 'rows.jsonl.gz');
    writeFileSync(notGzip, '{"text": "plain"}\n');
    await expect(readContainer(notGzip)).rejects.toThrow(`${notGzip}: is named .gz but does not hold gzip data; rename it to what it is, or compress it again`);
    for (const name of ['alpaca.jsonl.gz', 'alpaca.jsonl.zst']) {
      const bytes = readFileSync(fixture(name));
      const cut = join(dir, name);
      writeFileSync(cut, bytes.subarray(0, bytes.length - 20));
      await expect(readContainer(cut), name).rejects.toThrow(new RegExp(`^${cut.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot be decompressed \\((gzip|Zstandard): .+\\); the file may be cut short or damaged: fetch it again$`));
    }
  });
});
