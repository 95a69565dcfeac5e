// The containers read whole (CSV / TSV, JSON arrays, Parquet, and the
// Zstandard files decompressed in memory) are read in pieces into one buffer
// (file-chunks.ts readDataBytes), not by readFileSync, which refused any file
// past 2 GiB with a message that did not say what to do; past one buffer's
// size they are refused naming the file, its size, the limit and what to do.
// The files past 4 GiB here are sparse: nothing is read or written but a few bytes.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { decompressed } from './containers/decompress.js';
import { MAX_BUFFER_BYTES, readDataBytes } from './containers/file-chunks.js';
import { readContainer } from './containers/read-file.js';

const dir = mkdtempSync(join(tmpdir(), 'ps-whole-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A sparse file of `size` bytes starting with `start`. */
function sparse(name: string, start: Uint8Array | string, size: number): string {
  const file = join(dir, name);
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, typeof start === 'string' ? Buffer.from(start) : start, 0, undefined, 0);
    writeSync(fd, Buffer.from([0x20]), 0, 1, size - 1);
  } finally {
    closeSync(fd);
  }
  return file;
}

const bytesOf = (n: number) => `${n.toLocaleString('en-US')} bytes (${(n / 2 ** 30).toFixed(2)} GiB)`;

describe('files read whole', () => {
  it('reads a file in pieces as readFileSync would, and refuses one past the limit saying what to do', () => {
    const file = join(dir, 'rows.csv');
    const content = Buffer.from('prompt,completion\n"é€𝄞",x\n'.repeat(1000));
    writeFileSync(file, content);
    expect(readDataBytes(file).equals(readFileSync(file))).toBe(true);
    expect(readDataBytes(file, content.length).equals(content)).toBe(true);
    expect(() => readDataBytes(file, content.length - 1)).toThrow(
      `${file}: is ${bytesOf(content.length)}, more than one buffer holds here (${bytesOf(content.length - 1)}), and a file of its type is read into one; convert it to JSON Lines (.jsonl, or .jsonl.gz: read a line at a time, at any size), or split it into several files in one folder and give the folder (a folder of files is one dataset, its files read in order)`,
    );
    expect(() => readDataBytes(join(dir, 'missing.csv'))).toThrow(`cannot read data file ${join(dir, 'missing.csv')}: no such file`);
    expect(() => readDataBytes(dir)).toThrow(`cannot read data file ${dir}: it is a folder, not a file`);
  });

  it('refuses a CSV, a JSON array or a Parquet file past one buffer (4 GiB) by its size, reading none of it', async () => {
    const size = MAX_BUFFER_BYTES + 1;
    for (const [name, start] of [['big.csv', 'prompt,completion\n'], ['big.json', '[{"text": "a"},'], ['big.parquet', 'PAR1']] as const) {
      const file = sparse(name, start, size);
      await expect(readContainer(file), name).rejects.toThrow(`${file}: is ${bytesOf(size)}, more than one buffer holds here (${bytesOf(MAX_BUFFER_BYTES)}), and a file of its type is read into one; convert it to JSON Lines`);
      rmSync(file);
    }
    // Zstandard is decompressed in memory: the same, with what to do for it
    const zst = sparse('big.jsonl.zst', Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), size);
    await expect(readContainer(zst)).rejects.toThrow(`${zst}: is ${bytesOf(size)}, more than one buffer holds here (${bytesOf(MAX_BUFFER_BYTES)}), and a file of its type is read into one; Zstandard files are decompressed in memory: decompress it, or give its rows as JSON Lines compressed with gzip (.jsonl.gz)`);
    rmSync(zst);
  });

  it('refuses a compressed file that holds more than one buffer once decompressed, saying what to do', () => {
    const gz = gzipSync(Buffer.from('prompt,completion\n' + 'a,b\n'.repeat(100)));
    expect(decompressed(gz, 'x.csv.gz', 418)).toHaveLength(418);
    expect(() => decompressed(gz, 'x.csv.gz', 417)).toThrow(`x.csv.gz: holds more than ${bytesOf(417)} once decompressed, more than one buffer holds here; decompress it, or give its rows as JSON Lines compressed with gzip (.jsonl.gz), which is read a line at a time at any size`);
  });
});
