// The safetensors file format: element types, their sizes, and the error type.
//
// Layout of a file: 8-byte little-endian u64 N, then N bytes of UTF-8 JSON (the
// header), then the data section. The header maps tensor names to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data
// section) plus an optional "__metadata__" string->string map.
//
// Rules here follow the reference implementation (the Rust `safetensors`
// crate, safetensors/src/tensor.rs).

/**
 * Every element type the reference crate knows, in the order of its `Dtype`
 * enum. That order is "increasing alignment" and the reference writer sorts
 * tensors by it (descending), so the order is part of the format.
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** Bits per element (sub-byte types exist: F4, F6_*). */
export const DTYPE_BITS: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const DTYPE_RANK = new Map<string, number>(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && DTYPE_RANK.has(value);
}

/** Position of the dtype in the reference enum (used for the writer's sort). */
export function dtypeRank(dtype: SafetensorsDType): number {
  return DTYPE_RANK.get(dtype)!;
}

/** The reference crate refuses headers above this many bytes (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes before the header: the u64 header length. */
export const HEADER_LENGTH_BYTES = 8;

/** One tensor of a validated file. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) relative to the start of the data section, as in the header */
  dataOffsets: [number, number];
  /** absolute byte offset of the tensor's first byte in the file */
  offset: number;
  byteLength: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** N: the length of the JSON header in bytes (padding included) */
  headerLength: number;
  /** absolute offset of the data section: 8 + N */
  dataStart: number;
  /** "__metadata__", or null when the file has none */
  metadata: Record<string, string> | null;
  /** every tensor, sorted by offset */
  tensors: SafetensorsTensorInfo[];
  byName: Map<string, SafetensorsTensorInfo>;
}

/**
 * Every problem with a safetensors file. The message names the file, the
 * tensor (when one is at fault), what is wrong, and what to do about it.
 */
export class SafetensorsError extends Error {
  readonly file: string;
  readonly tensor: string | null;
  readonly problem: string;

  constructor(file: string, tensor: string | null, problem: string, advice: string) {
    const where = tensor === null ? file : `${file}: tensor "${tensor}"`;
    super(`${where}: ${problem}. ${advice}`);
    this.name = 'SafetensorsError';
    this.file = file;
    this.tensor = tensor;
    this.problem = problem;
  }
}

/** Advice shared by many messages. */
export const ADVICE = {
  redownload: 'The file is damaged or incomplete: download it again.',
  truncated: 'The file looks truncated: download it again.',
  notSafetensors: 'This is not a valid safetensors file: check that the path points at a .safetensors file and download it again.',
} as const;
