// What a run records of its dataset report (electron/data/report.ts): enough
// for the app to show which rows were used, skipped (and why) and truncated
// without reading the data again. Kept small: run.json is rewritten often.
import type { DatasetReport } from '../data/index.js';
import type { RowProblem } from '../data/problems.js';

/** Skipped rows listed one by one; the rest are only counted. */
export const SKIPPED_ROWS_LISTED = 20;

export interface RunDataSummary {
  /** the path as given: a file, or a folder of files */
  file: string;
  /** a folder's: how many files were read, and the split (absent in runs of earlier versions, and for a single file) */
  files?: number;
  split?: DatasetReport['split'];
  format: DatasetReport['format'];
  formatDetected: boolean;
  rows: DatasetReport['rows'];
  /** the first SKIPPED_ROWS_LISTED skipped rows, in file order */
  skipped: Pick<RowProblem, 'source' | 'kind' | 'reason'>[];
  skippedByKind: DatasetReport['skippedByKind'];
  truncation: DatasetReport['truncation'];
  tokens: DatasetReport['tokens'];
  /** how the rows were laid out ("the model's chat template", ...; absent in runs of earlier versions) */
  layouts?: string[];
}

export function summarizeDataset(report: DatasetReport): RunDataSummary {
  return {
    file: report.file,
    ...(report.files.length > 1 || report.split ? { files: report.files.length, split: report.split } : {}),
    format: report.format,
    formatDetected: report.formatDetected,
    rows: { ...report.rows },
    skipped: report.skipped.slice(0, SKIPPED_ROWS_LISTED).map(({ source, kind, reason }) => ({ source, kind, reason })),
    skippedByKind: { ...report.skippedByKind },
    truncation: { ...report.truncation },
    tokens: { ...report.tokens },
    layouts: [...report.layouts],
  };
}
