// Reads and validates the header of a safetensors file without touching the
// tensor data. The checks, and their order, are those of the reference reader
// (`SafeTensors::read_metadata` in the Rust crate):
//   1. at least 8 bytes;  2. N <= 100 MB;  3. 8 + N <= file size;
//   4. header is UTF-8;  5. header is JSON of the right shape (an object of
//      tensor entries with a known dtype, a shape of non-negative integers and
//      two integer offsets; "__metadata__" a string->string map or null);
//   6. sorted by offsets, each tensor starts where the previous one ended
//      (the first at 0) and is exactly dtype size x element count bytes;
//   7. the last tensor ends exactly at the end of the file.
// Every failure is a SafetensorsError naming the file, the tensor and the fix.

import { open } from 'node:fs/promises';
import {
  ADVICE,
  DTYPE_BITS,
  HEADER_LENGTH_BYTES,
  MAX_HEADER_BYTES,
  SafetensorsError,
  isSafetensorsDType,
  SAFETENSORS_DTYPES,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './format.js';
import { JsonFloat, JsonSyntaxError, describeJsonValue, parseStrictJson, type JsonValue } from './strict-json.js';

/**
 * Reads the header of `file` and validates it against the file's size.
 * Returns every tensor with its absolute byte offset in the file.
 */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new SafetensorsError(file, null, `cannot open the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      'Check that the path exists and is readable.');
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new SafetensorsError(file, null, 'is a folder or a device, not a file', 'Point at the .safetensors file itself.');
    }
    const size = info.size;
    const lengthBytes = new Uint8Array(Math.min(HEADER_LENGTH_BYTES, size));
    await readFully(handle, lengthBytes, 0, file);
    const claimed = headerLengthOf(lengthBytes, size, file);
    const prefix = new Uint8Array(HEADER_LENGTH_BYTES + claimed);
    prefix.set(lengthBytes, 0);
    await readFully(handle, prefix.subarray(HEADER_LENGTH_BYTES), HEADER_LENGTH_BYTES, file);
    return parseSafetensorsHeader(prefix, size, file);
  } finally {
    await handle.close();
  }
}

/**
 * Validates a header held in memory. `prefix` holds at least the first
 * 8 + N bytes of the file, `fileSize` is the size of the whole file.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const n = headerLengthOf(prefix, fileSize, file);
  if (prefix.length < HEADER_LENGTH_BYTES + n) {
    throw new RangeError(`parseSafetensorsHeader needs the first ${HEADER_LENGTH_BYTES + n} bytes, got ${prefix.length}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(prefix.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + n));
  } catch {
    throw new SafetensorsError(file, null, 'the header is not valid UTF-8 text', ADVICE.notSafetensors);
  }
  let json: JsonValue;
  try {
    json = parseStrictJson(text);
  } catch (err) {
    const detail = err instanceof JsonSyntaxError ? err.message : String(err);
    throw new SafetensorsError(file, null, `the header is not valid JSON (${detail})`, ADVICE.notSafetensors);
  }
  const { metadata, entries } = interpretHeader(json, file);

  // Sort by (begin, end) as the reference does; a stable sort keeps ties in
  // header order.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  const dataStart = HEADER_LENGTH_BYTES + n;
  const dataBytes = fileSize - dataStart;
  let expectedBegin = 0;
  let previous: string | null = null;
  for (const t of entries) {
    const [begin, end] = t.dataOffsets;
    if (end < begin) {
      throw new SafetensorsError(file, t.name, `data_offsets [${begin}, ${end}] end before they begin`, ADVICE.redownload);
    }
    if (begin !== expectedBegin) {
      const problem = begin < expectedBegin
        ? `data_offsets [${begin}, ${end}] overlap ${previous === null ? 'the start of the data section' : `tensor "${previous}", which ends at ${expectedBegin}`}`
        : `data_offsets [${begin}, ${end}] leave a gap of ${begin - expectedBegin} bytes after ${previous === null ? 'the start of the data section' : `tensor "${previous}"`} (expected it to begin at ${expectedBegin})`;
      throw new SafetensorsError(file, t.name, problem, ADVICE.redownload);
    }
    const elements = t.shape.reduce((acc, d) => acc * BigInt(d), 1n);
    const bits = elements * BigInt(DTYPE_BITS[t.dtype]);
    if (bits % 8n !== 0n) {
      throw new SafetensorsError(file, t.name,
        `${elements} elements of ${t.dtype} (${DTYPE_BITS[t.dtype]} bits each) do not fill a whole number of bytes`, ADVICE.redownload);
    }
    const expectedBytes = bits / 8n;
    if (BigInt(end - begin) !== expectedBytes) {
      throw new SafetensorsError(file, t.name,
        `holds ${end - begin} bytes but ${t.dtype} with shape [${t.shape.join(', ')}] needs ${expectedBytes} bytes`, ADVICE.redownload);
    }
    expectedBegin = end;
    previous = t.name;
  }
  if (expectedBegin !== dataBytes) {
    if (expectedBegin > dataBytes) {
      throw new SafetensorsError(file, previous,
        `the tensors need ${expectedBegin} data bytes but the file has only ${Math.max(dataBytes, 0)} after the header`, ADVICE.truncated);
    }
    throw new SafetensorsError(file, null,
      `the file has ${dataBytes - expectedBegin} bytes after the end of the last tensor (the header accounts for ${expectedBegin} data bytes, the file has ${dataBytes})`,
      'The file is damaged or was written by a broken tool: download it again.');
  }

  const tensors: SafetensorsTensorInfo[] = entries.map((t) => ({
    ...t,
    offset: dataStart + t.dataOffsets[0],
    byteLength: t.dataOffsets[1] - t.dataOffsets[0],
  }));
  return {
    file,
    fileSize,
    headerLength: n,
    dataStart,
    metadata,
    tensors,
    byName: new Map(tensors.map((t) => [t.name, t])),
  };
}

/** Checks 1-3: reads N and checks it against the cap and the file size. */
function headerLengthOf(bytes: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < HEADER_LENGTH_BYTES || bytes.length < HEADER_LENGTH_BYTES) {
    throw new SafetensorsError(file, null, `the file is ${fileSize} bytes long, too short to hold the 8-byte header length`,
      fileSize === 0 ? 'The file is empty: download it again.' : ADVICE.truncated);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LENGTH_BYTES).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(file, null, `the header claims to be ${n} bytes long, more than the 100 MB limit`,
      ADVICE.notSafetensors);
  }
  const length = Number(n);
  if (HEADER_LENGTH_BYTES + length > fileSize) {
    throw new SafetensorsError(file, null,
      `the header claims to be ${length} bytes long but the file has only ${fileSize - HEADER_LENGTH_BYTES} bytes after the length field`,
      ADVICE.truncated);
  }
  return length;
}

interface Entry {
  name: string;
  dtype: SafetensorsTensorInfo['dtype'];
  shape: number[];
  dataOffsets: [number, number];
}

/** Check 5: the header's JSON has the shape of a safetensors header. */
function interpretHeader(json: JsonValue, file: string): { metadata: Record<string, string> | null; entries: Entry[] } {
  if (!(json instanceof Map)) {
    throw new SafetensorsError(file, null, `the header is JSON but not an object (found ${describeJsonValue(json)})`, ADVICE.notSafetensors);
  }
  let metadata: Record<string, string> | null = null;
  const entries: Entry[] = [];
  for (const [name, value] of json) {
    if (name === '__metadata__') {
      metadata = interpretMetadata(value, file);
      continue;
    }
    entries.push(interpretTensor(name, value, file));
  }
  return { metadata, entries };
}

function interpretMetadata(value: JsonValue, file: string): Record<string, string> | null {
  if (value === null) return null;
  if (!(value instanceof Map)) {
    throw new SafetensorsError(file, null, `"__metadata__" must be an object of strings (found ${describeJsonValue(value)})`, ADVICE.notSafetensors);
  }
  const out: Record<string, string> = Object.create(null);
  for (const [key, v] of value) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(file, null, `"__metadata__" entry "${key}" must be a string (found ${describeJsonValue(v)})`, ADVICE.notSafetensors);
    }
    out[key] = v;
  }
  return out;
}

function interpretTensor(name: string, value: JsonValue, file: string): Entry {
  const bad = (problem: string) => new SafetensorsError(file, name, problem, ADVICE.notSafetensors);
  if (!(value instanceof Map)) throw bad(`the entry must be an object with dtype, shape and data_offsets (found ${describeJsonValue(value)})`);
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!value.has(field)) throw bad(`the entry has no "${field}" field`);
  }
  const dtype = value.get('dtype')!;
  if (!isSafetensorsDType(dtype)) {
    throw new SafetensorsError(file, name,
      `unknown dtype ${typeof dtype === 'string' ? JSON.stringify(dtype) : `(${describeJsonValue(dtype)})`}; known dtypes are ${SAFETENSORS_DTYPES.join(', ')}`,
      'The file uses an element type this app cannot read: convert the model to F32, F16 or BF16 safetensors.');
  }
  const shapeValue = value.get('shape')!;
  if (!Array.isArray(shapeValue)) throw bad(`"shape" must be an array of non-negative integers (found ${describeJsonValue(shapeValue)})`);
  const shape = shapeValue.map((d, i) => sizeValue(d, `"shape"[${i}]`, bad));
  const offsets = value.get('data_offsets')!;
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw bad(`"data_offsets" must be an array of two non-negative integers [begin, end] (found ${describeJsonValue(offsets)})`);
  }
  const begin = sizeValue(offsets[0], '"data_offsets"[0]', bad);
  const end = sizeValue(offsets[1], '"data_offsets"[1]', bad);
  return { name, dtype, shape, dataOffsets: [begin, end] };
}

/** A non-negative integer, as serde reads a `usize`. */
function sizeValue(v: JsonValue, what: string, bad: (problem: string) => SafetensorsError): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint') {
    throw bad(v < 0n ? `${what} must be a non-negative integer (found ${v})` : `${what} is ${v}, too large for any real file`);
  }
  if (v instanceof JsonFloat) throw bad(`${what} must be a non-negative integer (found ${describeJsonValue(v)})`);
  throw bad(`${what} must be a non-negative integer (found ${describeJsonValue(v)})`);
}

async function readFully(handle: import('node:fs/promises').FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(file, null, `the file ended while reading its header (at byte ${position + done})`, ADVICE.truncated);
    }
    done += bytesRead;
  }
}

/** Reads the raw bytes of one tensor (for small tensors; models are memory-mapped by the engine). */
export async function readTensorBytes(header: SafetensorsHeader, name: string): Promise<Uint8Array> {
  const info = header.byName.get(name);
  if (!info) {
    throw new SafetensorsError(header.file, name, 'no such tensor in the file', `The file holds: ${[...header.byName.keys()].slice(0, 12).join(', ')}${header.byName.size > 12 ? ', …' : ''}.`);
  }
  const bytes = new Uint8Array(info.byteLength);
  const handle = await open(header.file, 'r');
  try {
    await readFully(handle, bytes, info.offset, header.file);
  } finally {
    await handle.close();
  }
  return bytes;
}
