// The data file types, said once: the reader's extensions, the words every
// help text and error uses, and the file picker's filter (the renderer
// imports this file: it imports nothing).

/** Extensions read as text containers (read-file.ts picks the container by them). */
export const TEXT_DATA_EXTENSIONS: readonly string[] = ['.jsonl', '.ndjson', '.json', '.csv', '.tsv', '.tab', '.txt', '.text', '.md'];

/** The data file types in words. */
export const DATA_FILE_TYPES = '.jsonl, .json, .csv, .tsv, .txt or .parquet (also gzip or zstd compressed: .jsonl.gz, .csv.zst)';

/** The file picker's filter (without dots): the common types and the compressed ones. */
export const DATA_PICKER_EXTENSIONS: readonly string[] = ['jsonl', 'json', 'csv', 'tsv', 'txt', 'parquet', 'gz', 'zst'];
