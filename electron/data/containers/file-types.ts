// The data file types, said once: the reader's extensions, the words every
// help text and error uses, and the file picker's filter (the renderer
// imports this file: it imports nothing).

/** Extensions read as text containers (read-file.ts picks the container by them). */
export const TEXT_DATA_EXTENSIONS: readonly string[] = ['.jsonl', '.ndjson', '.json', '.csv', '.tsv', '.tab', '.txt', '.text', '.md'];

/** The data file types in words. */
export const DATA_FILE_TYPES = '.jsonl, .json, .csv, .tsv, .txt or .parquet (also gzip or zstd compressed: .jsonl.gz, .csv.zst)';

/** The file picker's filter (without dots): the common types and the compressed ones. */
export const DATA_PICKER_EXTENSIONS: readonly string[] = ['jsonl', 'json', 'csv', 'tsv', 'txt', 'parquet', 'gz', 'zst'];

/** What a dataset path may be, in words (the help of --data and the like): a file, or a folder of them (dataset-folder.ts). */
export const DATASET_PATH_KINDS = `${DATA_FILE_TYPES}; or a folder of such files, as a Hugging Face dataset is laid out (its shards in order; its train split, or for evaluation its validation / test split, when the files are named after splits)`;
