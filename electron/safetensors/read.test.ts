import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsError } from './format.js';
import { readSafetensorsHeader, readTensorBytes } from './read.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'st-read-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 8-byte little-endian length, the header bytes, then `dataBytes` bytes of data. */
function assemble(header: string | Uint8Array, dataBytes: number, claimedLength?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, claimedLength ?? BigInt(h.length), true);
  out.set(h, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + h.length + i] = i & 0xff;
  return out;
}

let counter = 0;
async function fileWith(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `case-${counter++}.safetensors`);
  await writeFile(path, bytes);
  return path;
}

async function errorOf(bytes: Uint8Array): Promise<{ path: string; error: SafetensorsError }> {
  const path = await fileWith(bytes);
  try {
    await readSafetensorsHeader(path);
  } catch (error) {
    expect(error).toBeInstanceOf(SafetensorsError);
    return { path, error: error as SafetensorsError };
  }
  throw new Error('expected the header to be rejected');
}

const t = (name: string, dtype: string, shape: unknown, offsets: unknown) =>
  `${JSON.stringify(name)}:{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;

describe('readSafetensorsHeader on valid files', () => {
  it('reads the example file of the reference crate (I32 [2, 2], header of 60 bytes)', async () => {
    const header = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
    expect(header.length).toBe(60);
    const bytes = assemble(header, 16);
    const path = await fileWith(bytes);
    const h = await readSafetensorsHeader(path);
    expect(h.headerLength).toBe(60);
    expect(h.dataStart).toBe(68);
    expect(h.metadata).toBeNull();
    expect(h.tensors).toEqual([{ name: 'test', dtype: 'I32', shape: [2, 2], dataOffsets: [0, 16], offset: 68, byteLength: 16 }]);
    const data = await readTensorBytes(h, 'test');
    expect(Array.from(data)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it('sorts tensors by offset whatever the header order, and keeps zero-size tensors', async () => {
    const header = `{"__metadata__":{"format":"pt"},${t('b', 'F16', [2], [8, 12])},${t('empty', 'F32', [0, 3], [0, 0])},${t('a', 'F32', [2], [0, 8])}}   `;
    const path = await fileWith(assemble(header, 12));
    const h = await readSafetensorsHeader(path);
    expect(h.tensors.map((x) => x.name)).toEqual(['empty', 'a', 'b']);
    expect(h.metadata).toEqual({ format: 'pt' });
    const dataStart = 8 + new TextEncoder().encode(header).length;
    expect(h.byName.get('b')!.offset).toBe(dataStart + 8);
    expect(h.byName.get('a')!.byteLength).toBe(8);
  });

  it('accepts an empty file with header {}', async () => {
    const h = await readSafetensorsHeader(await fileWith(assemble('{}      ', 0)));
    expect(h.tensors).toEqual([]);
  });

  it('accepts tensor names that are not identifiers ("__proto__", unicode)', async () => {
    const header = `{${t('__proto__', 'U8', [1], [0, 1])},${t('día', 'U8', [1], [1, 2])}}`;
    const h = await readSafetensorsHeader(await fileWith(assemble(header, 2)));
    expect([...h.byName.keys()].sort()).toEqual(['__proto__', 'día']);
  });
});

describe('readSafetensorsHeader on malformed files', () => {
  const cases: { what: string; bytes: () => Uint8Array; message: RegExp; tensor?: string }[] = [
    { what: 'an empty file', bytes: () => new Uint8Array(0), message: /0 bytes long, too short.*The file is empty: download it again/ },
    { what: 'a file shorter than the length field', bytes: () => new Uint8Array(5), message: /5 bytes long, too short to hold the 8-byte header length.*looks truncated: download it again/ },
    { what: 'a header length larger than the file', bytes: () => assemble('{}', 18, 100n), message: /header claims to be 100 bytes long but the file has only 20 bytes.*truncated/ },
    { what: 'a header claimed larger than 100 MB', bytes: () => assemble('{}', 0, 100_000_001n), message: /header claims to be 100000001 bytes long, more than the 100 MB limit/ },
    { what: 'a header length of 2^64 - 1', bytes: () => assemble('{}', 0, 2n ** 64n - 1n), message: /18446744073709551615 bytes long, more than the 100 MB limit/ },
    { what: 'a header that is not UTF-8', bytes: () => assemble(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 0), message: /header is not valid UTF-8/ },
    { what: 'bad JSON', bytes: () => assemble('{"a": ', 0), message: /header is not valid JSON \(unexpected end of input at character 6\)/ },
    { what: 'trailing garbage after the JSON', bytes: () => assemble('{} x', 0), message: /not valid JSON \(trailing characters/ },
    { what: 'JSON that is not an object', bytes: () => assemble('[1,2]', 0), message: /header is JSON but not an object \(found array of 2\)/ },
    { what: 'a JSON string header', bytes: () => assemble('"hi"', 0), message: /not an object \(found string "hi"\)/ },
    { what: 'deeply nested JSON', bytes: () => assemble('['.repeat(5000) + ']'.repeat(5000), 0), message: /not valid JSON \(nesting deeper than 128 levels/ },
    { what: 'a tensor entry that is not an object', bytes: () => assemble('{"w":[1]}', 0), message: /must be an object with dtype, shape and data_offsets/, tensor: 'w' },
    { what: 'a missing data_offsets field', bytes: () => assemble('{"w":{"dtype":"F32","shape":[1]}}', 4), message: /has no "data_offsets" field/, tensor: 'w' },
    { what: 'an unknown dtype', bytes: () => assemble(`{${t('w', 'F7', [1], [0, 1])}}`, 1), message: /unknown dtype "F7"; known dtypes are BOOL, F4.*convert the model to F32, F16 or BF16/, tensor: 'w' },
    { what: 'a lowercase dtype', bytes: () => assemble(`{${t('w', 'f32', [1], [0, 4])}}`, 4), message: /unknown dtype "f32"/, tensor: 'w' },
    { what: 'a negative dimension', bytes: () => assemble(`{${t('w', 'F32', [-1, 2], [0, 8])}}`, 8), message: /"shape"\[0\] must be a non-negative integer \(found integer -1\)/, tensor: 'w' },
    { what: 'a float dimension written as 2.0', bytes: () => assemble(`{"w":{"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]}}`, 16), message: /"shape"\[0\] must be a non-negative integer \(found floating-point number 2.0\)/, tensor: 'w' },
    { what: 'a fractional dimension', bytes: () => assemble(`{${t('w', 'F32', [1.5], [0, 6])}}`, 6), message: /found floating-point number 1.5/, tensor: 'w' },
    { what: 'a shape that is not an array', bytes: () => assemble(`{${t('w', 'F32', 4, [0, 16])}}`, 16), message: /"shape" must be an array of non-negative integers \(found integer 4\)/, tensor: 'w' },
    { what: 'three data offsets', bytes: () => assemble(`{${t('w', 'F32', [1], [0, 4, 8])}}`, 4), message: /"data_offsets" must be an array of two non-negative integers/, tensor: 'w' },
    { what: 'a huge offset', bytes: () => assemble('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,99999999999999999999]}}', 1), message: /"data_offsets"\[1\] is 99999999999999999999, too large/, tensor: 'w' },
    { what: 'overlapping tensors', bytes: () => assemble(`{${t('a', 'F32', [4], [0, 16])},${t('b', 'F32', [4], [8, 24])}}`, 24), message: /data_offsets \[8, 24\] overlap tensor "a", which ends at 16/, tensor: 'b' },
    { what: 'a gap between tensors', bytes: () => assemble(`{${t('a', 'F32', [4], [0, 16])},${t('b', 'F32', [4], [20, 36])}}`, 36), message: /data_offsets \[20, 36\] leave a gap of 4 bytes after tensor "a" \(expected it to begin at 16\)/, tensor: 'b' },
    { what: 'a first tensor not at offset 0', bytes: () => assemble(`{${t('a', 'F32', [1], [4, 8])}}`, 8), message: /leave a gap of 4 bytes after the start of the data section/, tensor: 'a' },
    { what: 'offsets that end before they begin', bytes: () => assemble(`{${t('a', 'F32', [0], [0, 0])},${t('b', 'F32', [1], [8, 4])}}`, 8), message: /data_offsets \[8, 4\] end before they begin/, tensor: 'b' },
    { what: 'offsets beyond the end of the file', bytes: () => assemble(`{${t('a', 'F32', [2, 2], [0, 16])}}`, 8), message: /tensors need 16 data bytes but the file has only 8 after the header.*looks truncated: download it again/, tensor: 'a' },
    { what: 'a byte size that does not match dtype x shape', bytes: () => assemble(`{${t('a', 'F32', [2, 2], [0, 12])}}`, 12), message: /holds 12 bytes but F32 with shape \[2, 2\] needs 16 bytes/, tensor: 'a' },
    { what: 'a BF16 tensor sized as F32', bytes: () => assemble(`{${t('a', 'BF16', [3], [0, 12])}}`, 12), message: /holds 12 bytes but BF16 with shape \[3\] needs 6 bytes/, tensor: 'a' },
    { what: 'sub-byte elements that do not fill whole bytes', bytes: () => assemble(`{${t('a', 'F4', [3], [0, 2])}}`, 2), message: /3 elements of F4 \(4 bits each\) do not fill a whole number of bytes/, tensor: 'a' },
    { what: 'a file longer than the header declares', bytes: () => assemble(`{${t('a', 'F32', [2], [0, 8])}}`, 12), message: /has 4 bytes after the end of the last tensor \(the header accounts for 8 data bytes, the file has 12\)/ },
    { what: 'metadata that is not a string map', bytes: () => assemble('{"__metadata__":{"step":5}}', 0), message: /"__metadata__" entry "step" must be a string \(found integer 5\)/ },
    { what: 'metadata that is a list', bytes: () => assemble('{"__metadata__":["pt"]}', 0), message: /"__metadata__" must be an object of strings/ },
  ];

  for (const c of cases) {
    it(`rejects ${c.what}`, async () => {
      const { path, error } = await errorOf(c.bytes());
      expect(error.message).toMatch(c.message);
      expect(error.file).toBe(path);
      expect(error.message.startsWith(path)).toBe(true);
      expect(error.tensor).toBe(c.tensor ?? null);
      if (c.tensor) expect(error.message).toContain(`tensor "${c.tensor}"`);
    });
  }

  it('names a missing file', async () => {
    const path = join(dir, 'does-not-exist.safetensors');
    await expect(readSafetensorsHeader(path)).rejects.toThrow(/does-not-exist\.safetensors: cannot open the file \(ENOENT\)/);
  });

  it('never fails with anything but a SafetensorsError on randomly damaged headers', async () => {
    const header = `{"__metadata__":{"format":"pt"},${t('a', 'F32', [2, 2], [0, 16])},${t('b', 'BF16', [3], [16, 22])}}`;
    const valid = assemble(header, 22);
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    let rejected = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = valid.slice(0, next() % 8 === 0 ? next() % valid.length : valid.length);
      for (let k = 0; k < 1 + (next() % 3); k++) bytes[next() % Math.min(bytes.length, 8 + header.length) || 0] = next() & 0xff;
      try {
        await readSafetensorsHeader(await fileWith(bytes));
      } catch (error) {
        expect(error).toBeInstanceOf(SafetensorsError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(200);
  });

  it('names a folder given instead of a file', async () => {
    await expect(readSafetensorsHeader(dir)).rejects.toThrow(new RegExp(`${dir}: is a folder or a device, not a file`));
  });

  it('reading an unknown tensor names it', async () => {
    const h = await readSafetensorsHeader(await fileWith(assemble(`{${t('a', 'U8', [1], [0, 1])}}`, 1)));
    await expect(readTensorBytes(h, 'b')).rejects.toThrow(/tensor "b": no such tensor in the file\. The file holds: a\./);
  });
});
