// Writes safetensors files byte-for-byte as the reference writer
// (`serialize_to_file` in the Rust crate) does:
//   - tensors sorted by dtype, larger-alignment types first (the reverse of the
//     crate's Dtype enum order), then by name;
//   - header = compact JSON: "__metadata__" first (keys sorted here, where the
//     crate's HashMap order is arbitrary), then tensors in data order, each as
//     {"dtype":..,"shape":[..],"data_offsets":[b,e]};
//   - the header padded with spaces to a multiple of 8 bytes, so the data of
//     every tensor starts 8-byte aligned.
// The file appears atomically: it is written beside the target, fsynced, and
// renamed over it.

import { endianness } from 'node:os';
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from '../files/atomic.js';
import { DTYPE_BITS, dtypeRank, isSafetensorsDType, type SafetensorsDType } from './format.js';

/** One tensor to write; `data` is little-endian element data (any typed array view). */
export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: number[];
  data: ArrayBufferView;
}

export type TensorsToWrite = Record<string, TensorToWrite> | Map<string, TensorToWrite> | Iterable<[string, TensorToWrite]>;

interface Planned {
  name: string;
  tensor: TensorToWrite;
  begin: number;
  end: number;
}

/** Builds the header bytes (length prefix + padded JSON) and the data order. */
export function planSafetensors(tensors: TensorsToWrite, metadata: Record<string, string> | null = null): { prefix: Uint8Array; order: Planned[]; dataBytes: number } {
  const entries: [string, TensorToWrite][] = tensors instanceof Map
    ? [...tensors]
    : Symbol.iterator in Object(tensors) ? [...(tensors as Iterable<[string, TensorToWrite]>)] : Object.entries(tensors as Record<string, TensorToWrite>);
  for (const [name, t] of entries) checkTensor(name, t);
  return layOut(entries.map(([name, tensor]) => ({ name, dtype: tensor.dtype, shape: tensor.shape, byteLength: tensor.data.byteLength, tensor })), metadata);
}

/**
 * The exact size of the file writeSafetensors would write for these tensors,
 * from their names, dtypes and shapes alone (nothing the size of the data is
 * allocated): for disk-space estimates before training or export.
 */
export function safetensorsFileSize(tensors: readonly { name: string; dtype: SafetensorsDType; shape: readonly number[] }[], metadata: Record<string, string> | null = null): number {
  const { prefix, dataBytes } = layOut(tensors.map((t) => ({ ...t, byteLength: tensorByteLength(t.name, t.dtype, t.shape) })), metadata);
  return prefix.length + dataBytes;
}

/** Sorts the tensors into data order, assigns offsets and encodes the header. */
function layOut<T extends { name: string; dtype: SafetensorsDType; shape: readonly number[]; byteLength: number }>(
  tensors: T[],
  metadata: Record<string, string> | null,
): { prefix: Uint8Array; order: (T & { begin: number; end: number })[]; dataBytes: number } {
  const seen = new Set<string>();
  for (const { name } of tensors) {
    if (seen.has(name)) throw new Error(`safetensors: tensor "${name}" is given twice`);
    seen.add(name);
  }
  if (metadata !== null) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata value for "${k}" must be a string`);
    }
  }
  const sorted = [...tensors].sort((a, b) => dtypeRank(b.dtype) - dtypeRank(a.dtype) || compareUtf8(a.name, b.name));

  let offset = 0;
  const order = sorted.map((t) => {
    const begin = offset;
    offset += t.byteLength;
    return { ...t, begin, end: offset };
  });

  // serde_json's compact output: same escaping as JSON.stringify for strings
  // and plain decimal integers.
  const parts: string[] = [];
  if (metadata !== null) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  for (const p of order) {
    parts.push(`${JSON.stringify(p.name)}:{"dtype":"${p.dtype}","shape":[${p.shape.join(',')}],"data_offsets":[${p.begin},${p.end}]}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);
  return { prefix, order, dataBytes: offset };
}

/** Serializes to one buffer (for small files and tests). */
export function serializeSafetensors(tensors: TensorsToWrite, metadata: Record<string, string> | null = null): Uint8Array {
  assertLittleEndianHost();
  const { prefix, order, dataBytes } = planSafetensors(tensors, metadata);
  const out = new Uint8Array(prefix.length + dataBytes);
  out.set(prefix, 0);
  for (const p of order) out.set(bytesOf(p.tensor.data), prefix.length + p.begin);
  return out;
}

/**
 * Writes a safetensors file atomically (temp file beside the target, fsync,
 * rename). `metadata` is typically {format: "pt"}, as PyTorch writers use.
 * A failed write is the FileWriteError of files/atomic.ts as it is (the
 * folder writers above it word a full disk from its code and size), with the
 * file's exact size for the message when the disk cannot take it.
 */
export async function writeSafetensors(file: string, tensors: TensorsToWrite, metadata: Record<string, string> | null = null): Promise<void> {
  assertLittleEndianHost();
  const { prefix, order, dataBytes } = planSafetensors(tensors, metadata);
  await writeFileAtomic(file, async (handle) => {
    await writeAll(handle, prefix);
    for (const p of order) await writeAll(handle, bytesOf(p.tensor.data));
  }, { bytes: prefix.length + dataBytes });
}

function checkTensor(name: string, t: TensorToWrite): void {
  const bytes = tensorByteLength(name, t.dtype, t.shape);
  if (bytes !== t.data.byteLength) {
    throw new Error(`safetensors: tensor "${name}" (${t.dtype} [${t.shape.join(', ')}]) needs ${bytes} bytes of data, got ${t.data.byteLength}`);
  }
}

/** Bytes of a tensor's data; throws for an unknown dtype, a bad shape or a sub-byte total. */
function tensorByteLength(name: string, dtype: SafetensorsDType, shape: readonly number[]): number {
  if (!isSafetensorsDType(dtype)) throw new Error(`safetensors: tensor "${name}" has unknown dtype ${String(dtype)}`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`safetensors: tensor "${name}" has an invalid shape [${String(shape)}]`);
  }
  const bits = shape.reduce((a, d) => a * d, 1) * DTYPE_BITS[dtype];
  if (bits % 8 !== 0) {
    throw new Error(`safetensors: tensor "${name}" (${dtype} [${shape.join(', ')}]) holds ${bits} bits, not a whole number of bytes`);
  }
  return bits / 8;
}

/** Orders strings by UTF-8 bytes, as Rust's String ordering does. */
function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const ea = Buffer.from(a, 'utf8');
  const eb = Buffer.from(b, 'utf8');
  return Buffer.compare(ea, eb);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: writing from a big-endian host is not supported');
}
