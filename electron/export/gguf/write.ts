// Writing GGUF v3 files (layout in format.ts): the header and tensor table
// are built in memory, the tensor data is streamed after them (a tensor may
// be produced only when the writer reaches it, so a whole model never needs
// to be in memory), and the file appears atomically (temp file, fsync, rename).
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from '../../files/atomic.js';
import {
  alignUp,
  ggmlTensorBytes,
  GgmlType,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufValueType,
  type GgufKv,
  type GgufScalarType,
  type GgufTensorToWrite,
} from './format.js';

const WRITE_CHUNK = 64 * 1024 * 1024;

/** Little-endian byte sink that grows as needed. */
class ByteWriter {
  private buf = Buffer.alloc(4096);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void { this.reserve(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint): void { this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint): void { this.reserve(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number): void { this.reserve(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  result(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(w: ByteWriter, type: GgufScalarType, value: number | bigint | boolean | string, key: string): void {
  const bad = () => new Error(`GGUF metadata "${key}": ${JSON.stringify(String(value))} is not a valid ${GgufValueType[type]}`);
  if (type === GgufValueType.STRING) {
    if (typeof value !== 'string') throw bad();
    w.string(value);
    return;
  }
  if (type === GgufValueType.BOOL) {
    if (typeof value !== 'boolean') throw bad();
    w.u8(value ? 1 : 0);
    return;
  }
  if (typeof value !== 'number' && typeof value !== 'bigint') throw bad();
  const n = Number(value);
  switch (type) {
    case GgufValueType.UINT8: return w.u8(n);
    case GgufValueType.INT8: return w.i8(n);
    case GgufValueType.UINT16: return w.u16(n);
    case GgufValueType.INT16: return w.i16(n);
    case GgufValueType.UINT32: return w.u32(n);
    case GgufValueType.INT32: return w.i32(n);
    case GgufValueType.FLOAT32: return w.f32(n);
    case GgufValueType.FLOAT64: return w.f64(n);
    case GgufValueType.UINT64: return w.u64(value);
    case GgufValueType.INT64: return w.i64(value);
  }
}

/** Bytes a tensor's data must have, from its type and dims. */
function tensorBytes(t: GgufTensorToWrite): number {
  const bytes = ggmlTensorBytes(t.type, t.dims);
  if (bytes === null) throw new Error(`GGUF tensor "${t.name}": dims [${t.dims.join(', ')}] do not fit type ${GgmlType[t.type]}: ne[0] must be a multiple of its block size`);
  return bytes;
}

function checkDataBytes(t: GgufTensorToWrite, data: Uint8Array, bytes: number): void {
  if (data.length !== bytes) {
    throw new Error(`GGUF tensor "${t.name}": ${data.length} bytes of data for dims [${t.dims.join(', ')}] of type ${GgmlType[t.type]} (${bytes} expected)`);
  }
}

export interface GgufLayout {
  /** the header, KV pairs and tensor table, padded to the alignment */
  header: Buffer;
  /** offset of each tensor inside the data section (multiples of the alignment) */
  offsets: number[];
  /** total file size */
  fileBytes: number;
}

/** Builds the header and tensor table for these pairs and tensors. */
export function layoutGguf(kvs: readonly GgufKv[], tensors: readonly GgufTensorToWrite[], alignment = GGUF_DEFAULT_ALIGNMENT): GgufLayout {
  const keys = new Set<string>();
  for (const kv of kvs) {
    if (keys.has(kv.key)) throw new Error(`GGUF metadata key "${kv.key}" is given twice`);
    keys.add(kv.key);
  }
  const names = new Set<string>();
  const offsets: number[] = [];
  let dataBytes = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF tensor "${t.name}" is given twice`);
    names.add(t.name);
    const bytes = tensorBytes(t);
    if (typeof t.data !== 'function') checkDataBytes(t, t.data, bytes);
    dataBytes = alignUp(dataBytes, alignment);
    offsets.push(dataBytes);
    dataBytes += bytes;
  }

  const w = new ByteWriter();
  w.bytes(Buffer.from(GGUF_MAGIC, 'latin1'));
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const kv of kvs) {
    w.string(kv.key);
    w.u32(kv.type);
    if (kv.type === GgufValueType.ARRAY) {
      w.u32(kv.itemType);
      w.u64(kv.value.length);
      for (const v of kv.value) writeScalar(w, kv.itemType, v, kv.key);
    } else {
      writeScalar(w, kv.type, kv.value, kv.key);
    }
  }
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offsets[i]);
  });
  w.zeros(alignUp(w.length, alignment) - w.length);
  const header = w.result();
  return { header, offsets, fileBytes: header.length + alignUp(dataBytes, alignment) };
}

/** Writes a GGUF file atomically. `alignment` must match any general.alignment among `kvs`. */
export async function writeGguf(file: string, kvs: readonly GgufKv[], tensors: readonly GgufTensorToWrite[], alignment = GGUF_DEFAULT_ALIGNMENT): Promise<GgufLayout> {
  const declared = kvs.find((kv) => kv.key === 'general.alignment');
  if (declared && Number(declared.value) !== alignment) {
    throw new Error(`GGUF general.alignment is ${String(declared.value)} but the file is laid out with ${alignment}`);
  }
  const layout = layoutGguf(kvs, tensors, alignment);
  await writeFileAtomic(file, async (handle: FileHandle) => {
    let position = 0;
    // In pieces: one write call takes at most 2 GiB, and an 8B model's embedding is more.
    const put = async (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, done, Math.min(WRITE_CHUNK, bytes.length - done), position);
        done += bytesWritten;
        position += bytesWritten;
      }
    };
    await put(layout.header);
    let dataPos = 0;
    for (let i = 0; i < tensors.length; i++) {
      if (layout.offsets[i] > dataPos) await put(new Uint8Array(layout.offsets[i] - dataPos));
      const t = tensors[i];
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      checkDataBytes(t, data, tensorBytes(t));
      await put(data);
      dataPos = layout.offsets[i] + data.length;
    }
    const tail = layout.fileBytes - position;
    if (tail > 0) await put(new Uint8Array(tail));
  }, { bytes: layout.fileBytes }); // a full disk is told the file's size
  return layout;
}
