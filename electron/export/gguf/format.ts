// The GGUF container format (version 3), as ggml's docs/gguf.md defines it:
//   magic "GGUF" | uint32 version | uint64 tensor_count | uint64 kv_count
//   kv_count × (string key, uint32 value_type, value)
//   tensor_count × (string name, uint32 n_dims, uint64 ne[n_dims] innermost
//                   first, uint32 ggml_type, uint64 offset into the data section)
//   padding to `general.alignment` (default 32), then the tensor data, each
//   tensor starting at a multiple of the alignment.
// Strings are a uint64 byte length followed by UTF-8 bytes (no terminator).
// Everything is little-endian here (big-endian GGUF exists but nothing we
// target reads it).

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the type tag of a metadata value. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** The ggml tensor types this project writes and reads (ggml_type values). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
  BF16 = 30,
}

/**
 * How a ggml type lays out values: `blockSize` values take `blockBytes`
 * bytes (ggml's blck_size / type_size). A row (ne[0] values) must hold
 * whole blocks.
 */
export const GGML_TYPE_LAYOUT: Record<GgmlType, { blockSize: number; blockBytes: number }> = {
  [GgmlType.F32]: { blockSize: 1, blockBytes: 4 },
  [GgmlType.F16]: { blockSize: 1, blockBytes: 2 },
  // block_q8_0: an fp16 scale d, then 32 int8 codes; value = d * q
  [GgmlType.Q8_0]: { blockSize: 32, blockBytes: 34 },
  [GgmlType.BF16]: { blockSize: 1, blockBytes: 2 },
};

export function isGgmlType(type: number): type is GgmlType {
  return type in GGML_TYPE_LAYOUT;
}

/**
 * Bytes of a tensor with these dims (innermost first) in `type`, or null
 * when ne[0] is not a whole number of the type's blocks (ggml refuses it).
 */
export function ggmlTensorBytes(type: GgmlType, dims: readonly number[]): number | null {
  const { blockSize, blockBytes } = GGML_TYPE_LAYOUT[type];
  if (dims.length === 0 || dims[0] % blockSize !== 0) return null;
  const elements = dims.reduce((a, d) => a * d, 1);
  return (elements / blockSize) * blockBytes;
}

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

/** One metadata pair. Integers of 64 bits are bigint, other numbers number. */
export type GgufKv =
  | { key: string; type: GgufScalarType; value: number | bigint | boolean | string }
  | { key: string; type: GgufValueType.ARRAY; itemType: GgufScalarType; value: (number | bigint | boolean | string)[] };

/**
 * A tensor to write: `dims` innermost first (GGUF's ne[]), data already in
 * `type`'s encoding, or a function that makes it when the writer reaches the
 * tensor, so that only one tensor at a time needs to be in memory.
 */
export interface GgufTensorToWrite {
  name: string;
  dims: number[];
  type: GgmlType;
  data: Uint8Array | (() => Promise<Uint8Array> | Uint8Array);
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Bytes of one value of a fixed-size scalar type (strings have none). */
export function scalarBytes(type: GgufScalarType): number | null {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
    case GgufValueType.FLOAT64:
      return 8;
    case GgufValueType.STRING:
      return null;
  }
}

/** Values per Q8_0 block. */
export const Q8_0_BLOCK = 32;

/**
 * Q8_0 encoding of `values` (a whole number of 32-value blocks), bit for bit
 * as ggml's quantize_row_q8_0_ref: per block, in float32 arithmetic,
 *   d = amax / 127, id = d ? 1 / d : 0, q[j] = roundf(x[j] * id)
 * (roundf rounds halves away from zero), d stored as fp16 (to nearest, ties
 * to even). `toF16Bits` is the float32 -> fp16 conversion (passed in so this
 * file stays free of the safetensors code).
 */
export function quantizeQ8_0(values: Float32Array, toF16Bits: (x: number) => number): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) {
    throw new Error(`Q8_0 needs a whole number of ${Q8_0_BLOCK}-value blocks; got ${values.length} values (ggml requires ne[0] % ${Q8_0_BLOCK} == 0)`);
  }
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  const fround = Math.fround;
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const a = Math.abs(values[base + j]);
      if (a > amax) amax = a;
    }
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0;
    const o = b * 34;
    view.setUint16(o, toF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const x0 = fround(values[base + j] * id);
      // roundf: halves away from zero (Math.round would take -2.5 to -2)
      const q = x0 < 0 ? -Math.floor(-x0 + 0.5) : Math.floor(x0 + 0.5);
      view.setInt8(o + 2 + j, q);
    }
  }
  return out;
}

/** Q8_0 blocks back to float32: d * q per value (ggml's dequantize_row_q8_0). */
export function dequantizeQ8_0(bytes: Uint8Array, fromF16Bits: (h: number) => number): Float32Array {
  if (bytes.length % 34 !== 0) throw new Error(`Q8_0 data of ${bytes.length} bytes is not a whole number of 34-byte blocks`);
  const blocks = bytes.length / 34;
  const out = new Float32Array(blocks * Q8_0_BLOCK);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = fromF16Bits(view.getUint16(b * 34, true));
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * view.getInt8(b * 34 + 2 + j);
  }
  return out;
}
