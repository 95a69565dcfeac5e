// Test helper: Parquet files written by an independent implementation, the
// Apache Arrow Rust parquet writer (arrow-rs, compiled to WebAssembly: the
// parquet-wasm dev dependency), from Arrow tables built with apache-arrow:
// the same Arrow schema pyarrow writes for a Hugging Face dataset
// (strings, list<struct<...>>, list<int64>).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm/esm';

let ready = false;
function init(): void {
  if (ready) return;
  // the package's Node build does not load as ES module: the ESM build with its wasm handed over
  pw.initSync({ module: readFileSync(createRequire(import.meta.url).resolve('parquet-wasm/esm/parquet_wasm_bg.wasm')) });
  ready = true;
}

export type ParquetCodec = 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP' | 'BROTLI' | 'ZSTD' | 'LZ4_RAW';
export const PARQUET_CODECS: readonly ParquetCodec[] = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI', 'ZSTD', 'LZ4_RAW'];

export const utf8 = () => new arrow.Utf8();
export const int64List = () => new arrow.List(new arrow.Field('item', new arrow.Int64(), true));
/** list<struct<role: string, content: string>>, as a chat dataset's "messages" column */
export const messageList = (role = 'role', content = 'content') =>
  new arrow.List(new arrow.Field('item', new arrow.Struct([new arrow.Field(role, new arrow.Utf8(), true), new arrow.Field(content, new arrow.Utf8(), true)]), true));

export interface ParquetOptions {
  codec?: ParquetCodec;
  /** rows per row group (several groups: the reader must read them all, in order) */
  rowGroupRows?: number;
  dictionary?: boolean;
}

/** Writes `columns` (name -> values and Arrow type) to `file` as Parquet; returns the file. */
export function writeParquet(file: string, columns: Record<string, { values: unknown[]; type: arrow.DataType }>, options: ParquetOptions = {}): string {
  init();
  const vectors: Record<string, arrow.Vector> = {};
  for (const [name, c] of Object.entries(columns)) vectors[name] = arrow.vectorFromArray(c.values, c.type);
  const table = new arrow.Table(vectors);
  let props = new pw.WriterPropertiesBuilder().setCompression(pw.Compression[options.codec ?? 'SNAPPY']);
  if (options.rowGroupRows !== undefined) props = props.setMaxRowGroupSize(options.rowGroupRows);
  if (options.dictionary !== undefined) props = props.setDictionaryEnabled(options.dictionary);
  writeFileSync(file, pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props.build()));
  return file;
}
