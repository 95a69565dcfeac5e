// rowsBytes against what a real load's rows hold (process.memoryUsage after
// full collections), and the loader's storage: rows are views into a few
// shared buffers, a warm load's into the token cache entry it read, and a
// file cut short by the sequence length is copied out rather than kept whole.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/load-dataset.js';
import { TokenCache } from '../data/token-cache.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { tempDir, tinyModel } from '../testing/e2e-fixtures.js';
import type { Example } from './data.js';
import { backingBytes, DOCUMENT_BYTES, ROW_OBJECT_BYTES, rowsBytes, VIEW_BYTES } from './rows-bytes.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/**
 * Heap and ArrayBuffer bytes once full collections free nothing more (the
 * buffers of earlier garbage are swept beside the main thread and counted as
 * freed a while later: one gc() could charge them to the next measure).
 */
async function held(): Promise<{ heap: number; buffers: number }> {
  let last: { heap: number; buffers: number } | null = null;
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    const m = process.memoryUsage();
    if (last && m.arrayBuffers === last.buffers && Math.abs(m.heapUsed - last.heap) < 64 * 1024) break;
    last = { heap: m.heapUsed, buffers: m.arrayBuffers };
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

const VOCAB = 320;
let tok: ModelTokenizer;
let dir: string;
let file: string;
let tokens: number;
beforeAll(async () => {
  tok = await ModelTokenizer.load((await tinyModel({ seed: 3 })).dir);
  dir = tempDir('rows-bytes');
  file = join(dir, 'ids.jsonl');
  // 20,000 pre-tokenized rows of 5 to 204 tokens (about 2M tokens)
  const lines: string[] = [];
  tokens = 0;
  for (let r = 0; r < 20_000; r++) {
    const n = 5 + ((r * 7919) % 200);
    tokens += n;
    lines.push(JSON.stringify({ input_ids: Array.from({ length: n }, (_, i) => (r * 7 + i * 13) % 300 + 3) }));
  }
  writeFileSync(file, lines.join('\n') + '\n');
});

const options = (pack: boolean, seqLen = 256) => ({ format: 'auto' as const, seqLen, completionOnly: false, pack, vocabSize: VOCAB });

describe('rowsBytes', () => {
  it('counts each buffer once, whatever share of it the rows view, plus the allowance per row, view and document', () => {
    const shared = new ArrayBuffer(4000);
    const own = new Int32Array(7);
    const a: Example = { inputIds: new Int32Array(shared, 0, 10), labels: new Int32Array(shared, 40, 10), source: 'f:1' };
    const b: Example = { inputIds: new Int32Array(shared, 80, 3), labels: own, source: 'f:2' };
    expect(rowsBytes([a, b])).toBe(4000 + 28 + 2 * ROW_OBJECT_BYTES);
    const packed: Example = {
      inputIds: new Int32Array(shared, 0, 4), labels: new Int32Array(shared, 16, 4), segments: Int32Array.of(0, 0, 1, 1), positions: Int32Array.of(0, 1, 0, 1),
      source: 'f:1 (+1 packed)', documents: ['f:1', 'f:2'],
    };
    expect(rowsBytes([packed])).toBe(4000 + 16 + 16 + ROW_OBJECT_BYTES + 2 * VIEW_BYTES + 2 * DOCUMENT_BYTES);
    expect(rowsBytes([])).toBe(0);
    expect(backingBytes([a.inputIds, a.labels, b.inputIds])).toBe(4000);
  });

  for (const pack of [false, true]) {
    it(`is what a real load's rows hold${pack ? ', packed' : ''}: their buffers to the byte, the whole within 10%`, async () => {
      const before = await held();
      const loaded = (await loadDataset(file, tok, options(pack), null)).examples;
      const predicted = rowsBytes(loaded);
      const buffers = backingBytes(loaded.flatMap((e) => [e.inputIds, e.labels, ...(e.segments ? [e.segments, e.positions!] : [])]));
      expect(loaded.reduce((n, e) => n + e.inputIds.length, 0)).toBe(tokens);
      // the tokens are in ArrayBuffers, not on the heap: 8 bytes a token (16 packed), the last chunk's unused tail
      // (at most 4 MiB: token-arena.ts) and what each full chunk left behind (less than one row of 204 tokens)
      expect(buffers).toBeGreaterThanOrEqual((pack ? 16 : 8) * tokens);
      expect(buffers).toBeLessThan((pack ? 16 : 8) * tokens + 4 * 2 ** 20 + 16 * 4 * 204);
      const withRows = await held();
      expect(withRows.buffers - before.buffers).toBe(buffers);
      // emptied, not let go: the array itself may linger in a register of this frame, its rows do not
      loaded.length = 0;
      const after = await held();
      const freed = { heap: withRows.heap - after.heap, buffers: withRows.buffers - after.buffers };
      expect(freed.buffers).toBe(buffers);
      expect(freed.heap).toBeGreaterThan(0);
      expect(Math.abs(predicted - (freed.heap + freed.buffers)) / (freed.heap + freed.buffers)).toBeLessThan(0.1);
      // and the heap allowance on its own, within 20% (the heap is the noisier measure)
      expect(Math.abs(predicted - buffers - freed.heap) / freed.heap).toBeLessThan(0.2);
    });
  }
});

describe('where the loader keeps the tokens', () => {
  it('a warm load views the token cache entry it read (one buffer, no copy per row) and equals a cold one', async () => {
    const cache = new TokenCache(join(dir, 'cache'), 2 ** 30);
    const cold = await loadDataset(file, tok, options(false, 1024), cache);
    expect(cold.tokenized.files).toBe(1);
    const warm = await loadDataset(file, tok, options(false, 1024), cache);
    expect(warm.tokenized.cachedFiles).toBe(1);
    expect(warm.examples).toEqual(cold.examples);
    const buffers = new Set(warm.examples.flatMap((e) => [e.inputIds.buffer, e.labels.buffer]));
    expect(buffers.size).toBe(1);
    // the entry: header, 12 bytes a record and 8 a token
    const [entry] = buffers;
    expect(entry.byteLength).toBeGreaterThan(8 * tokens + 12 * 20_000);
    expect(entry.byteLength).toBeLessThan(8 * tokens + 12 * 20_000 + 4096);
  });

  it('rows cut to a short sequence are copied out, not left holding the whole file', async () => {
    const cache = new TokenCache(join(dir, 'cache-short'), 2 ** 30);
    await loadDataset(file, tok, options(false, 1024), cache);
    const { examples, report } = await loadDataset(file, tok, options(false, 16), cache);
    expect(report.truncation.rows).toBeGreaterThan(18_000);
    const kept = examples.reduce((n, e) => n + e.inputIds.length, 0);
    expect(kept).toBe(report.tokens.total);
    const buffers = backingBytes(examples.flatMap((e) => [e.inputIds, e.labels]));
    // 8 bytes a kept token and the arena's unused tail (its chunks double: under twice the bytes kept), not the 16 MiB entry
    expect(buffers).toBeGreaterThanOrEqual(8 * kept);
    expect(buffers).toBeLessThan(2 * 8 * kept);
    expect(buffers).toBeLessThan((8 * tokens) / 4);
    // and the same rows as without the cache
    expect(examples).toEqual((await loadDataset(file, tok, options(false, 16), null)).examples);
  });
});
