import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTensorAsFloat32 } from './convert.js';
import { FileWriteError } from '../files/atomic.js';
import { readSafetensorsHeader, readTensorBytes } from './read.js';
import { safetensorsFileSize, serializeSafetensors, writeSafetensors } from './write.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'st-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The bytes of a file, assembled by hand: length, header text, padding, data. */
function handMade(headerJson: string, padTo8: boolean, data: number[]): number[] {
  const header = Array.from(new TextEncoder().encode(headerJson));
  while (padTo8 && header.length % 8 !== 0) header.push(0x20);
  const n = header.length;
  const length = [n & 0xff, (n >> 8) & 0xff, 0, 0, 0, 0, 0, 0];
  return [...length, ...header, ...data];
}

function f32Bytes(values: number[]): number[] {
  const view = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return Array.from(new Uint8Array(view.buffer));
}

describe('serializeSafetensors matches the reference writer byte for byte', () => {
  it('writes one F32 tensor whose header needs no padding (64 bytes)', () => {
    const out = serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const expected = handMade('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', false, f32Bytes([0, 1, 2, 3, 4, 5]));
    expect(expected.slice(0, 8)).toEqual([64, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(out)).toEqual(expected);
  });

  it('pads a 65-byte header with 7 spaces to 72 bytes', () => {
    const out = serializeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const expected = handMade('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ', false, f32Bytes([0, 1, 2, 3, 4, 5]));
    expect(expected[0]).toBe(72);
    expect(Array.from(out)).toEqual(expected);
  });

  it('writes no tensors as {} plus 6 spaces, and metadata first', () => {
    expect(Array.from(serializeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    expect(Array.from(serializeSafetensors({}, { framework: 'pt' }))).toEqual(handMade('{"__metadata__":{"framework":"pt"}}', true, []));
    expect(handMade('{"__metadata__":{"framework":"pt"}}', true, [])[0]).toBe(40);
  });

  it('orders tensors by dtype alignment (descending enum order), then by name', () => {
    const u16 = (n: number) => new Uint16Array(n);
    const out = serializeSafetensors(new Map([
      ['a', { dtype: 'F16' as const, shape: [2], data: u16(2) }],
      ['b', { dtype: 'F32' as const, shape: [1], data: new Float32Array([7]) }],
      ['c', { dtype: 'BF16' as const, shape: [1], data: u16(1) }],
      ['d', { dtype: 'U8' as const, shape: [3], data: new Uint8Array([1, 2, 3]) }],
      ['a2', { dtype: 'F32' as const, shape: [1], data: new Float32Array([5]) }],
      ['e', { dtype: 'I64' as const, shape: [1], data: new BigInt64Array([9n]) }],
    ]));
    const headerJson = '{"e":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},'
      + '"a2":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},'
      + '"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},'
      + '"c":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},'
      + '"a":{"dtype":"F16","shape":[2],"data_offsets":[18,22]},'
      + '"d":{"dtype":"U8","shape":[3],"data_offsets":[22,25]}}';
    const data = [9, 0, 0, 0, 0, 0, 0, 0, ...f32Bytes([5, 7]), 0, 0, 0, 0, 0, 0, 1, 2, 3];
    expect(Array.from(out)).toEqual(handMade(headerJson, true, data));
  });

  it('escapes names like serde_json', () => {
    const out = serializeSafetensors({ 'q"\\\n\u0001é': { dtype: 'U8', shape: [], data: new Uint8Array([4]) } });
    const text = new TextDecoder().decode(out.subarray(8));
    expect(text.startsWith('{"q\\"\\\\\\n\\u0001é":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}')).toBe(true);
  });

  it('refuses data whose length does not match dtype x shape', () => {
    expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }))
      .toThrow(/tensor "w" \(F32 \[2, 2\]\) needs 16 bytes of data, got 12/);
  });
});

describe('safetensorsFileSize', () => {
  it('is the length of the serialized file, from names, dtypes and shapes alone', () => {
    const tensors = {
      'model.embed_tokens.weight': { dtype: 'BF16' as const, shape: [7, 3], data: new Uint16Array(21) },
      'lm_head.weight': { dtype: 'F32' as const, shape: [7, 3], data: new Float32Array(21) },
      'é"name': { dtype: 'U8' as const, shape: [5], data: new Uint8Array(5) },
      scalar: { dtype: 'I64' as const, shape: [], data: new BigInt64Array(1) },
    };
    const described = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
    const metadatas: (Record<string, string> | null)[] = [null, { format: 'pt' }, { format: 'pt', note: 'x'.repeat(13) }];
    for (const metadata of metadatas) {
      expect(safetensorsFileSize(described, metadata)).toBe(serializeSafetensors(tensors, metadata).length);
    }
  });

  it('refuses what the writer refuses', () => {
    expect(() => safetensorsFileSize([{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [2] }])).toThrow(/tensor "a" is given twice/);
    expect(() => safetensorsFileSize([{ name: 'w', dtype: 'F32', shape: [-1] }])).toThrow(/tensor "w" has an invalid shape/);
    expect(() => safetensorsFileSize([{ name: 'q', dtype: 'F4', shape: [3] }])).toThrow(/tensor "q" \(F4 \[3\]\) holds 12 bits, not a whole number of bytes/);
  });
});

describe('writeSafetensors', () => {
  it('round-trips through the reader with identical values and metadata', async () => {
    const path = join(dir, 'round-trip.safetensors');
    const w = new Float32Array([1.5, -2.25, 3e-8, 65504, -0, 1e30]);
    const bias = new Uint16Array([0x3f80, 0xbf80, 0x7fc0]);
    await writeSafetensors(path, {
      'model.layers.0.weight': { dtype: 'F32', shape: [2, 3], data: w },
      'model.layers.0.bias': { dtype: 'BF16', shape: [3], data: bias },
    }, { format: 'pt' });
    const h = await readSafetensorsHeader(path);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['model.layers.0.weight', 'F32', [2, 3]],
      ['model.layers.0.bias', 'BF16', [3]],
    ]);
    const back = await readTensorAsFloat32(h, 'model.layers.0.weight');
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(w));
    expect(Object.is(back.data[4], -0)).toBe(true);
    const biasBack = await readTensorAsFloat32(h, 'model.layers.0.bias');
    expect(biasBack.data[0]).toBe(1);
    expect(biasBack.data[1]).toBe(-1);
    expect(Number.isNaN(biasBack.data[2])).toBe(true);
    expect(Array.from(await readTensorBytes(h, 'model.layers.0.bias'))).toEqual([0x80, 0x3f, 0x80, 0xbf, 0xc0, 0x7f]);
    // data starts 8-byte aligned
    expect(h.dataStart % 8).toBe(0);
  });

  it('writes the same bytes as serializeSafetensors and leaves no temp file', async () => {
    const tensors = { x: { dtype: 'F32' as const, shape: [3], data: new Float32Array([1, 2, 3]) } };
    const path = join(dir, 'same.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    expect(Array.from(await readFile(path))).toEqual(Array.from(serializeSafetensors(tensors, { format: 'pt' })));
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('replaces an existing file atomically', async () => {
    const path = join(dir, 'replace.safetensors');
    await writeSafetensors(path, { a: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) } });
    await writeSafetensors(path, { b: { dtype: 'U8', shape: [2], data: new Uint8Array([2, 3]) } });
    const h = await readSafetensorsHeader(path);
    expect([...h.byName.keys()]).toEqual(['b']);
  });

  it('reports a folder that does not exist, naming the file', async () => {
    const path = join(dir, 'no-such-folder', 'x.safetensors');
    const err = await writeSafetensors(path, {}).catch((e) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err.message).toMatch(/no-such-folder\/x\.safetensors: cannot create a file in .*no-such-folder \(ENOENT\)\. Check that the folder exists/);
  });
});
