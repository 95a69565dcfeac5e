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
}

export const GGML_TYPE_BYTES: Record<GgmlType, number> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2 };

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

/** One metadata pair. Integers of 64 bits are bigint, other numbers number. */
export type GgufKv =
  | { key: string; type: GgufScalarType; value: number | bigint | boolean | string }
  | { key: string; type: GgufValueType.ARRAY; itemType: GgufScalarType; value: (number | bigint | boolean | string)[] };

/** A tensor to write: `dims` innermost first (GGUF's ne[]), data already in `type`'s encoding. */
export interface GgufTensorToWrite {
  name: string;
  dims: number[];
  type: GgmlType;
  data: Uint8Array;
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
