// Tests: overwrite one value of a tensor in a safetensors file in place (a
// NaN in a model or adapter, as a damaged download would hold), in the
// tensor's own dtype (F32, F16 or BF16).
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Sets element `index` of tensor `name` in `file` to `value` (NaN / Infinity / a number). */
export function patchTensorValue(file: string, name: string, index: number, value: number): void {
  const fd = openSync(file, 'r+');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const headerBytes = Number(len.readBigUInt64LE(0));
    const header = Buffer.alloc(headerBytes);
    readSync(fd, header, 0, headerBytes, 8);
    const entry = (JSON.parse(header.toString('utf8')) as Record<string, HeaderEntry>)[name];
    if (!entry) throw new Error(`${file}: no tensor ${name}`);
    const width = entry.dtype === 'F32' ? 4 : 2;
    const at = 8 + headerBytes + entry.data_offsets[0] + index * width;
    const bytes = Buffer.alloc(width);
    if (entry.dtype === 'F32') bytes.writeFloatLE(value, 0);
    else if (entry.dtype === 'BF16') {
      const f = Buffer.alloc(4);
      f.writeFloatLE(value, 0);
      bytes.writeUInt16LE(f.readUInt32LE(0) >>> 16, 0);
    } else if (entry.dtype === 'F16') {
      // NaN 0x7e00, +-Inf 0x7c00 / 0xfc00: what these tests write
      if (Number.isNaN(value)) bytes.writeUInt16LE(0x7e00, 0);
      else if (value === Infinity) bytes.writeUInt16LE(0x7c00, 0);
      else if (value === -Infinity) bytes.writeUInt16LE(0xfc00, 0);
      else throw new Error('patchTensorValue: F16 takes NaN or +-Infinity only');
    } else throw new Error(`patchTensorValue: dtype ${entry.dtype} not supported`);
    writeSync(fd, bytes, 0, width, at);
  } finally {
    closeSync(fd);
  }
}
