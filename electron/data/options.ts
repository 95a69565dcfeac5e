// What the caller chooses about a dataset (the run manager, the CLI).
import type { DatasetRole } from './containers/dataset-folder.js';

export const DATASET_FORMATS = ['auto', 'alpaca', 'chat', 'completion', 'text', 'tokenized'] as const;
/** What a dataset is read for (containers/dataset-folder.ts: a folder's train split, or its validation / test split). */
export const DATASET_ROLES: readonly DatasetRole[] = ['train', 'eval'];
export type DatasetFormatOption = (typeof DATASET_FORMATS)[number];
/** A concrete format (what 'auto' resolves to). */
export type DatasetFormat = Exclude<DatasetFormatOption, 'auto'>;

export interface DatasetOptions {
  /** 'auto' detects the format from the rows' fields */
  format: DatasetFormatOption;
  /** rows longer than this are truncated (and packed rows are this long at most) */
  seqLen: number;
  /** true: only completions / outputs / assistant turns are trained (the default); false: every token */
  completionOnly: boolean;
  /** concatenate several examples into rows of up to seqLen tokens (segments keep them apart) */
  pack: boolean;
  /** the model's vocabulary size; ids at or above it are rejected */
  vocabSize: number;
  /** a folder split by name (containers/dataset-folder.ts): read its train split (the default) or its validation / test split */
  role?: DatasetRole;
  /** false: the caller evaluates on a folder's other split already; the notice does not suggest it (default true) */
  suggestEvalSplit?: boolean;
}

export const DEFAULT_DATASET_OPTIONS: Omit<DatasetOptions, 'seqLen' | 'vocabSize'> = {
  format: 'auto',
  completionOnly: true,
  pack: false,
};
