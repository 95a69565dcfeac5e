// Reading GGUF files (layout in format.ts): the header, every metadata pair,
// the tensor table, and any tensor's data decoded to float32. Every check a
// loader must make (magic, version, bounds, alignment, types) fails with a
// message that names the file and what is wrong.
import { open } from 'node:fs/promises';
import { bf16ToF32, f16BitsToF32, f16ToF32 } from '../../safetensors/convert.js';
import {
  alignUp,
  dequantizeQ8_0,
  ggmlTensorBytes,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgmlType,
  GgufValueType,
  isGgmlType,
  type GgufScalarType,
} from './format.js';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufMetadataEntry {
  type: GgufValueType;
  /** for arrays: the element type */
  itemType?: GgufValueType;
  value: GgufValue;
}

export interface GgufTensorInfo {
  name: string;
  /** ne[]: innermost dimension first */
  dims: number[];
  type: GgmlType;
  /** offset inside the data section */
  offset: number;
  /** bytes of data */
  bytes: number;
}

export interface GgufFile {
  file: string;
  version: number;
  metadata: Map<string, GgufMetadataEntry>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** absolute offset of the data section */
  dataOffset: number;
  fileBytes: number;
}

export class GgufFormatError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'GgufFormatError';
  }
}

/** The bytes parsed end before the header does (the file, or the prefix readGgufHeader read so far). */
class GgufTruncatedError extends GgufFormatError {}

/** Sequential little-endian reader over the whole file's bytes. */
class Cursor {
  pos = 0;
  constructor(private readonly buf: Buffer, private readonly file: string) {}

  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new GgufTruncatedError(this.file, `ends inside ${what} (offset ${this.pos}); the file is truncated`);
  }
  u8(what: string): number { this.need(1, what); return this.buf.readUInt8(this.pos++); }
  i8(what: string): number { this.need(1, what); return this.buf.readInt8(this.pos++); }
  u16(what: string): number { this.need(2, what); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  i16(what: string): number { this.need(2, what); const v = this.buf.readInt16LE(this.pos); this.pos += 2; return v; }
  u32(what: string): number { this.need(4, what); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(what: string): number { this.need(4, what); const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  f32(what: string): number { this.need(4, what); const v = this.buf.readFloatLE(this.pos); this.pos += 4; return v; }
  f64(what: string): number { this.need(8, what); const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  u64(what: string): bigint { this.need(8, what); const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  i64(what: string): bigint { this.need(8, what); const v = this.buf.readBigInt64LE(this.pos); this.pos += 8; return v; }
  /** a uint64 that must fit a JS number (counts, sizes, offsets) */
  size(what: string): number {
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(this.file, `${what} is ${v}, too large`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.size(`the length of ${what}`);
    this.need(n, what);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function readScalar(c: Cursor, type: GgufValueType, what: string, file: string): number | bigint | boolean | string {
  switch (type) {
    case GgufValueType.UINT8: return c.u8(what);
    case GgufValueType.INT8: return c.i8(what);
    case GgufValueType.UINT16: return c.u16(what);
    case GgufValueType.INT16: return c.i16(what);
    case GgufValueType.UINT32: return c.u32(what);
    case GgufValueType.INT32: return c.i32(what);
    case GgufValueType.FLOAT32: return c.f32(what);
    case GgufValueType.FLOAT64: return c.f64(what);
    case GgufValueType.UINT64: return c.u64(what);
    case GgufValueType.INT64: return c.i64(what);
    case GgufValueType.BOOL: {
      const b = c.u8(what);
      if (b > 1) throw new GgufFormatError(file, `${what} is a bool stored as ${b}; only 0 and 1 are valid`);
      return b === 1;
    }
    case GgufValueType.STRING: return c.string(what);
    default: throw new GgufFormatError(file, `${what} has unknown value type ${type}`);
  }
}

function readValue(c: Cursor, type: GgufValueType, key: string, file: string): GgufMetadataEntry {
  if (type !== GgufValueType.ARRAY) return { type, value: readScalar(c, type, `the value of "${key}"`, file) };
  const itemType = c.u32(`the array type of "${key}"`);
  const count = c.size(`the array length of "${key}"`);
  const items: GgufValue[] = [];
  for (let i = 0; i < count; i++) {
    items.push(itemType === GgufValueType.ARRAY
      ? readValue(c, c.u32(`the type of "${key}"[${i}]`), `${key}[${i}]`, file).value
      : readScalar(c, itemType, `"${key}"[${i}]`, file));
  }
  return { type, itemType, value: items };
}

/**
 * Parses a GGUF file held in memory; `bytes` may be only its beginning (up to
 * the end of the tensor table) when `fileBytes` gives the whole file's size.
 */
export function parseGguf(bytes: Buffer, file: string, fileBytes = bytes.length): GgufFile {
  const c = new Cursor(bytes, file);
  if (bytes.length < 4 || bytes.toString('latin1', 0, 4) !== GGUF_MAGIC) {
    throw new GgufFormatError(file, 'is not a GGUF file (it does not start with "GGUF")');
  }
  c.pos = 4;
  const version = c.u32('the version');
  if (version !== 2 && version !== 3) {
    throw new GgufFormatError(file, `is GGUF version ${version}; only versions 2 and 3 are supported (convert it again with a current llama.cpp)`);
  }
  const tensorCount = c.size('the tensor count');
  const kvCount = c.size('the metadata count');

  const metadata = new Map<string, GgufMetadataEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`);
    if (metadata.has(key)) throw new GgufFormatError(file, `metadata key "${key}" appears twice`);
    metadata.set(key, readValue(c, c.u32(`the type of "${key}"`), key, file));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const declared = metadata.get('general.alignment');
  if (declared) {
    if (declared.type !== GgufValueType.UINT32) throw new GgufFormatError(file, `general.alignment must be a uint32, found type ${GgufValueType[declared.type]}`);
    alignment = declared.value as number;
    if (alignment === 0 || alignment % 8 !== 0) throw new GgufFormatError(file, `general.alignment is ${alignment}; it must be a non-zero multiple of 8`);
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor name ${i}`);
    if (names.has(name)) throw new GgufFormatError(file, `tensor "${name}" appears twice`);
    names.add(name);
    const nDims = c.u32(`the dimension count of "${name}"`);
    if (nDims < 1 || nDims > 4) throw new GgufFormatError(file, `tensor "${name}" has ${nDims} dimensions; GGUF allows 1 to 4`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.size(`dimension ${d} of "${name}"`));
    const type = c.u32(`the type of "${name}"`);
    const offset = c.size(`the offset of "${name}"`);
    if (!isGgmlType(type)) {
      throw new GgufFormatError(file, `tensor "${name}" has ggml type ${type}; only F32 (0), F16 (1), Q8_0 (8) and BF16 (30) tensors can be read (convert the file again with --outtype f32, f16, bf16 or q8_0)`);
    }
    if (offset % alignment !== 0) throw new GgufFormatError(file, `tensor "${name}" starts at data offset ${offset}, not a multiple of the alignment ${alignment}`);
    const bytes = ggmlTensorBytes(type, dims);
    if (bytes === null) throw new GgufFormatError(file, `tensor "${name}" has ne[0] = ${dims[0]}, not a whole number of ${GgmlType[type]} blocks`);
    tensors.push({ name, dims, type, offset, bytes });
  }
  const dataOffset = alignUp(c.pos, alignment);
  for (const t of tensors) {
    if (dataOffset + t.offset + t.bytes > fileBytes) {
      throw new GgufFormatError(file, `tensor "${t.name}" (${t.bytes} bytes at data offset ${t.offset}) runs past the end of the file (${fileBytes} bytes); the file is truncated`);
    }
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].bytes) {
      throw new GgufFormatError(file, `tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap`);
    }
  }
  return { file, version, metadata, tensors, alignment, dataOffset, fileBytes };
}

/** Reads and parses a GGUF file, keeping its bytes for tensorAsFloat32. */
export async function readGguf(file: string): Promise<GgufFile & { bytes: Buffer }> {
  let bytes: Buffer;
  const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new GgufFormatError(file, err.code === 'ENOENT' ? 'no such file' : `cannot be read (${err.code ?? String(err)})`);
  });
  try {
    bytes = await handle.readFile();
  } finally {
    await handle.close();
  }
  return { ...parseGguf(bytes, file), bytes };
}

/**
 * The header and tensor table of a GGUF file of any size (readGguf holds the
 * whole file, which Node refuses beyond 2 GiB); tensors are then read one at
 * a time with readGgufTensor.
 */
export async function readGgufHeader(file: string): Promise<GgufFile> {
  const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new GgufFormatError(file, err.code === 'ENOENT' ? 'no such file' : `cannot be read (${err.code ?? String(err)})`);
  });
  try {
    const size = (await handle.stat()).size;
    // a tokenizer's metadata runs to several MB (Llama 3: 128k tokens, 280k merges): grow the prefix until the table fits
    for (let prefix = Math.min(size, 1 << 22); ; prefix = Math.min(size, prefix * 4)) {
      const bytes = Buffer.alloc(prefix);
      await readAt(handle, bytes, 0, file);
      try {
        return parseGguf(bytes, file, size);
      } catch (err) {
        if (!(err instanceof GgufTruncatedError) || prefix === size) throw err;
      }
    }
  } finally {
    await handle.close();
  }
}

/** Fills `into` from the file at `position`, in pieces (one read takes at most 2 GiB). */
async function readAt(handle: Awaited<ReturnType<typeof open>>, into: Uint8Array, position: number, file: string): Promise<void> {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await handle.read(into, done, Math.min(1 << 26, into.length - done), position + done);
    if (bytesRead === 0) throw new GgufFormatError(file, `ends at byte ${position + done}; the file is truncated`);
    done += bytesRead;
  }
}

/** One tensor of a file read with readGgufHeader, as float32 (see tensorAsFloat32). */
export async function readGgufTensor(gguf: GgufFile, info: GgufTensorInfo): Promise<Float32Array> {
  const raw = new Uint8Array(info.bytes);
  const handle = await open(gguf.file, 'r');
  try {
    await readAt(handle, raw, gguf.dataOffset + info.offset, gguf.file);
  } finally {
    await handle.close();
  }
  return decodeTensor(raw, info);
}

/** A tensor's values as float32 (F16 and BF16 widened exactly, Q8_0 dequantized as ggml does). */
export function tensorAsFloat32(gguf: GgufFile & { bytes: Buffer }, info: GgufTensorInfo): Float32Array {
  const start = gguf.dataOffset + info.offset;
  // Copy: the slice may not be 4-byte aligned inside the Buffer's pool.
  return decodeTensor(new Uint8Array(gguf.bytes.subarray(start, start + info.bytes)), info);
}

/** Data bytes (an aligned copy the result may share) decoded to float32. */
function decodeTensor(copy: Uint8Array, info: GgufTensorInfo): Float32Array {
  switch (info.type) {
    case GgmlType.F32: return new Float32Array(copy.buffer);
    case GgmlType.F16: return f16ToF32(new Uint16Array(copy.buffer));
    case GgmlType.BF16: return bf16ToF32(new Uint16Array(copy.buffer));
    case GgmlType.Q8_0: return dequantizeQ8_0(copy, f16BitsToF32);
  }
}

/** A metadata value of an expected type, or a clear error. */
export function metadataValue(gguf: GgufFile, key: string, type: GgufScalarType): number | bigint | boolean | string {
  const entry = gguf.metadata.get(key);
  if (!entry) throw new GgufFormatError(gguf.file, `has no metadata "${key}"`);
  if (entry.type !== type) throw new GgufFormatError(gguf.file, `metadata "${key}" is a ${GgufValueType[entry.type]}; expected ${GgufValueType[type]}`);
  return entry.value as number | bigint | boolean | string;
}
