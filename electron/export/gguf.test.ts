// The GGUF writer against an independent reader (@huggingface/gguf), our own
// reader's checks, and the llama.cpp q/k row permutation against a float64
// re-implementation of the converter's reshape / swapaxes.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf as hfGguf, GGUFValueType } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { GgmlType, GgufValueType, type GgufKv } from './gguf/format.js';
import { readGguf, tensorAsFloat32 } from './gguf/read.js';
import { writeGguf } from './gguf/write.js';
import { gatherRows, ropeRowOrder, scatterRows } from './rope-permute.js';
import { halfToNumber, referencePermute } from './test-reference.js';

const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));

describe('GGUF writer', () => {
  it('writes a v3 file that @huggingface/gguf parses: KV types and values, tensor table, alignment, data', async () => {
    const dir = tempDir('gguf');
    const file = join(dir, 't.gguf');
    const kvs: GgufKv[] = [
      { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
      { key: 'general.alignment', type: GgufValueType.UINT32, value: 32 },
      { key: 'test.f32', type: GgufValueType.FLOAT32, value: 0.1 },
      { key: 'test.f64', type: GgufValueType.FLOAT64, value: 0.1 },
      { key: 'test.bool', type: GgufValueType.BOOL, value: true },
      { key: 'test.i8', type: GgufValueType.INT8, value: -5 },
      { key: 'test.u16', type: GgufValueType.UINT16, value: 65535 },
      { key: 'test.i32', type: GgufValueType.INT32, value: -123456 },
      { key: 'test.u64', type: GgufValueType.UINT64, value: 2n ** 40n + 7n },
      { key: 'test.i64', type: GgufValueType.INT64, value: -(2n ** 40n) },
      { key: 'test.unicode', type: GgufValueType.STRING, value: 'héllo ✓' },
      { key: 'test.strings', type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: ['a', '', 'bc'] },
      { key: 'test.ints', type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: [1, -2, 3] },
    ];
    const a = Float32Array.from({ length: 15 }, (_, i) => i * 0.25 - 1); // ne [5, 3]: 60 bytes, not a multiple of 32
    const halfBits = Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x8000, 0x4248]); // 7 halves = 14 bytes
    const b = new Uint8Array(halfBits.buffer);
    await writeGguf(file, kvs, [
      { name: 'a', dims: [5, 3], type: GgmlType.F32, data: new Uint8Array(a.buffer) },
      { name: 'b.longer.name', dims: [7], type: GgmlType.F16, data: b },
      { name: 'c', dims: [2, 2], type: GgmlType.F32, data: new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer) },
    ]);

    const parsed = await hfGguf(file, { allowLocalFile: true, typedMetadata: true });
    const md = parsed.typedMetadata;
    expect(md.version.value).toBe(3);
    expect(md.tensor_count.value).toBe(3n);
    expect(md.kv_count.value).toBe(BigInt(kvs.length));
    expect(md['general.architecture']).toEqual({ value: 'llama', type: GGUFValueType.STRING });
    expect(md['general.alignment']).toEqual({ value: 32, type: GGUFValueType.UINT32 });
    expect(md['test.f32'].type).toBe(GGUFValueType.FLOAT32);
    expect(md['test.f32'].value).toBe(Math.fround(0.1));
    expect(md['test.f64']).toEqual({ value: 0.1, type: GGUFValueType.FLOAT64 });
    expect(md['test.bool']).toEqual({ value: true, type: GGUFValueType.BOOL });
    expect(md['test.i8']).toEqual({ value: -5, type: GGUFValueType.INT8 });
    expect(md['test.u16']).toEqual({ value: 65535, type: GGUFValueType.UINT16 });
    expect(md['test.i32']).toEqual({ value: -123456, type: GGUFValueType.INT32 });
    expect(md['test.u64']).toEqual({ value: 2n ** 40n + 7n, type: GGUFValueType.UINT64 });
    expect(md['test.i64']).toEqual({ value: -(2n ** 40n), type: GGUFValueType.INT64 });
    expect(md['test.unicode'].value).toBe('héllo ✓');
    expect(md['test.strings']).toEqual({ value: ['a', '', 'bc'], type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING });
    expect(md['test.ints']).toEqual({ value: [1, -2, 3], type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 });

    expect(parsed.tensorInfos.map((t) => t.name)).toEqual(['a', 'b.longer.name', 'c']);
    expect(parsed.tensorInfos.map((t) => t.shape)).toEqual([[5n, 3n], [7n], [2n, 2n]]);
    expect(parsed.tensorInfos.map((t) => Number(t.dtype))).toEqual([0, 1, 0]);
    expect(parsed.tensorInfos.map((t) => t.offset)).toEqual([0n, 64n, 96n]);
    expect(Number(parsed.tensorDataOffset) % 32).toBe(0);

    const bytes = readFileSync(file);
    const at = (t: number, n: number) => bytes.subarray(Number(parsed.tensorDataOffset + parsed.tensorInfos[t].offset), Number(parsed.tensorDataOffset + parsed.tensorInfos[t].offset) + n);
    expect(Buffer.from(at(0, 60)).equals(Buffer.from(a.buffer))).toBe(true);
    expect(Buffer.from(at(1, 14)).equals(Buffer.from(b))).toBe(true);
    expect(bytes.length % 32).toBe(0);

    // our reader sees the same file
    const ours = await readGguf(file);
    expect(ours.version).toBe(3);
    expect(ours.dataOffset).toBe(Number(parsed.tensorDataOffset));
    expect(ours.metadata.get('test.u64')!.value).toBe(2n ** 40n + 7n);
    expect(ours.metadata.get('test.strings')!.value).toEqual(['a', '', 'bc']);
    expect(Array.from(tensorAsFloat32(ours, ours.tensors[0]))).toEqual(Array.from(a));
    expect(Array.from(tensorAsFloat32(ours, ours.tensors[1]))).toEqual(Array.from(halfBits, halfToNumber));
  });

  it('the reader rejects a bad magic, an old version, a truncated file and a misaligned tensor, naming the file', async () => {
    const dir = tempDir('gguf');
    const file = join(dir, 'ok.gguf');
    await writeGguf(file, [{ key: 'general.type', type: GgufValueType.STRING, value: 'adapter' }], [
      { name: 'x', dims: [4], type: GgmlType.F32, data: new Uint8Array(16) },
    ]);
    const good = readFileSync(file);
    const variant = async (name: string, edit: (b: Buffer) => Buffer) => {
      const p = join(dir, name);
      writeFileSync(p, edit(Buffer.from(good)));
      return readGguf(p).then(() => 'parsed', (e: Error) => e.message);
    };
    expect(await variant('magic.gguf', (b) => { b.write('GGML', 0, 'latin1'); return b; })).toMatch(/magic\.gguf: is not a GGUF file/);
    expect(await variant('v1.gguf', (b) => { b.writeUInt32LE(1, 4); return b; })).toMatch(/v1\.gguf: is GGUF version 1/);
    expect(await variant('short.gguf', (b) => b.subarray(0, b.length - 20))).toMatch(/short\.gguf: tensor "x" .* runs past the end of the file/);
    expect(await variant('cut.gguf', (b) => b.subarray(0, 30))).toMatch(/cut\.gguf: ends inside/);
    // the tensor's offset is the last 8 bytes of the table: 0 -> 8 is not a multiple of 32
    const tableEnd = good.indexOf(Buffer.from('x', 'latin1'), 24) + 1 + 4 + 8 + 4;
    expect(await variant('misaligned.gguf', (b) => { b.writeBigUInt64LE(8n, tableEnd); return b; })).toMatch(/misaligned\.gguf: tensor "x" starts at data offset 8, not a multiple of the alignment 32/);
    expect(await readGguf(join(dir, 'missing.gguf')).catch((e: Error) => e.message)).toMatch(/missing\.gguf: no such file/);
  });
});

describe("llama.cpp's q/k row permutation", () => {
  it('matches a float64 reshape/swapaxes of the rows and is undone exactly', () => {
    for (const [heads, headDim, cols] of [[4, 16, 3], [2, 8, 5], [1, 2, 1], [8, 4, 2]]) {
      const rows = heads * headDim;
      const m = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) + i * 1e-3);
      const order = ropeRowOrder(heads, headDim);
      const permuted = gatherRows(m, cols, order);
      expect(Array.from(permuted)).toEqual(Array.from(referencePermute(m, rows, cols, heads)));
      expect(Array.from(scatterRows(permuted, cols, order))).toEqual(Array.from(m));
      if (headDim > 2) expect(Array.from(permuted)).not.toEqual(Array.from(m));
    }
    // head 0, head_dim 4: rows (0,1,2,3) -> (0,2,1,3): dimension j pairs with j + 2 before, 2j with 2j + 1 after
    expect(Array.from(ropeRowOrder(1, 4))).toEqual([0, 2, 1, 3]);
    expect(() => ropeRowOrder(2, 3)).toThrow(/odd/);
  });
});
