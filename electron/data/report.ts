// The dataset report: what the loader did with every row, for the CLI
// (`data inspect`), the run manager and the UI. Plain data (JSON-friendly).
import type { ContainerKind } from './containers/records.js';
import type { SplitName } from './containers/dataset-folder.js';
import type { DatasetFormat } from './options.js';
import type { ProblemKind, RowProblem } from './problems.js';

/** Token-length bins: fixed power-of-two edges, the same for every dataset so reports compare. */
export const LENGTH_BIN_EDGES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192] as const;

export interface LengthBin {
  /** inclusive token-length range; max null = no upper bound */
  min: number;
  max: number | null;
  count: number;
}

export interface DatasetReport {
  /** the path as given: a file, or a folder of files (containers/dataset-folder.ts) */
  file: string;
  /** the files read, in order, and the rows of each (one entry for a single file) */
  files: { path: string; rows: number }[];
  /** the split of a folder that was read (null: a single file, or a folder that names no split) */
  split: SplitName | null;
  container: ContainerKind;
  format: DatasetFormat;
  /** true when the format was detected from the fields ('auto') */
  formatDetected: boolean;
  /** how rows were laid out as text, e.g. "the model's chat template" */
  layouts: string[];
  /** things the user should know (fallback chat template, ...) */
  notices: string[];
  seqLen: number;
  completionOnly: boolean;
  pack: boolean;
  rows: {
    /** rows in the file (parsed or not) */
    total: number;
    used: number;
    skipped: number;
  };
  /** every skipped row, in file order */
  skipped: RowProblem[];
  skippedByKind: Partial<Record<ProblemKind, number>>;
  /** token lengths of the used rows before truncation */
  lengths: { bins: LengthBin[]; min: number; median: number; max: number; mean: number };
  truncation: { rows: number; tokensDropped: number };
  /** rows the trainer sees (= used rows, or fewer when packed) */
  examples: number;
  /** rows holding more than one document after packing */
  packedRows: number;
  tokens: {
    /** tokens in the examples (after truncation, no padding) */
    total: number;
    /** tokens the loss counts (shifted labels, not -100, not across a packing seam) */
    trained: number;
  };
}

export function lengthBins(lengths: readonly number[]): LengthBin[] {
  const bins: LengthBin[] = [];
  let min = 1;
  for (const edge of LENGTH_BIN_EDGES) {
    bins.push({ min, max: edge, count: 0 });
    min = edge + 1;
  }
  bins.push({ min, max: null, count: 0 });
  for (const n of lengths) {
    const k = LENGTH_BIN_EDGES.findIndex((edge) => n <= edge);
    bins[k < 0 ? bins.length - 1 : k].count++;
  }
  return bins;
}

export function lengthSummary(lengths: readonly number[]): DatasetReport['lengths'] {
  const sorted = [...lengths].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    bins: lengthBins(lengths),
    min: n ? sorted[0] : 0,
    median: n ? (n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2) : 0,
    max: n ? sorted[n - 1] : 0,
    mean: n ? sorted.reduce((a, b) => a + b, 0) / n : 0,
  };
}

export function countByKind(problems: readonly RowProblem[]): Partial<Record<ProblemKind, number>> {
  const out: Partial<Record<ProblemKind, number>> = {};
  for (const p of problems) out[p.kind] = (out[p.kind] ?? 0) + 1;
  return out;
}
