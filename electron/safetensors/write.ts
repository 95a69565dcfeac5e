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

import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DTYPE_BITS, dtypeRank, isSafetensorsDType, SafetensorsError, type SafetensorsDType } from './format.js';

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
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (seen.has(name)) throw new Error(`safetensors: tensor "${name}" is given twice`);
    seen.add(name);
    checkTensor(name, t);
  }
  if (metadata !== null) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata value for "${k}" must be a string`);
    }
  }
  entries.sort(([an, a], [bn, b]) => dtypeRank(b.dtype) - dtypeRank(a.dtype) || compareUtf8(an, bn));

  let offset = 0;
  const order: Planned[] = entries.map(([name, tensor]) => {
    const begin = offset;
    offset += tensor.data.byteLength;
    return { name, tensor, begin, end: offset };
  });

  // serde_json's compact output: same escaping as JSON.stringify for strings
  // and plain decimal integers.
  const parts: string[] = [];
  if (metadata !== null) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  for (const p of order) {
    parts.push(`${JSON.stringify(p.name)}:{"dtype":"${p.tensor.dtype}","shape":[${p.tensor.shape.join(',')}],"data_offsets":[${p.begin},${p.end}]}`);
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
 */
export async function writeSafetensors(file: string, tensors: TensorsToWrite, metadata: Record<string, string> | null = null): Promise<void> {
  assertLittleEndianHost();
  const { prefix, order } = planSafetensors(tensors, metadata);
  await writeFileAtomic(file, async (handle) => {
    await writeAll(handle, prefix);
    for (const p of order) await writeAll(handle, bytesOf(p.tensor.data));
  });
}

/**
 * Creates `file` atomically: `fill` writes into a temp file in the same
 * folder, which is then fsynced and renamed over `file`. On any error the temp
 * file is removed and `file` is left as it was.
 */
export async function writeFileAtomic(file: string, fill: (handle: import('node:fs/promises').FileHandle) => Promise<void>): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(temp, 'wx');
  } catch (err) {
    throw new SafetensorsError(file, null, `cannot create a file in ${dirname(file)} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      'Check that the folder exists and is writable, and that the disk is not full.');
  }
  try {
    await fill(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, file);
  } catch (err) {
    if (handle) await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    if (err instanceof SafetensorsError) throw err;
    throw new SafetensorsError(file, null, `writing failed (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      'Check free disk space and permissions, then try again.');
  }
  await syncDirectory(dirname(file));
}

/** Makes a rename durable (best effort: not every platform can fsync a folder). */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Windows cannot open folders for fsync; the rename is still atomic.
  }
}

function checkTensor(name: string, t: TensorToWrite): void {
  if (!isSafetensorsDType(t.dtype)) throw new Error(`safetensors: tensor "${name}" has unknown dtype ${String(t.dtype)}`);
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`safetensors: tensor "${name}" has an invalid shape [${String(t.shape)}]`);
  }
  const bits = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BITS[t.dtype];
  if (bits % 8 !== 0 || bits / 8 !== t.data.byteLength) {
    throw new Error(`safetensors: tensor "${name}" (${t.dtype} [${t.shape.join(', ')}]) needs ${bits / 8} bytes of data, got ${t.data.byteLength}`);
  }
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

async function writeAll(handle: import('node:fs/promises').FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: writing from a big-endian host is not supported');
}
