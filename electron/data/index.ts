// The dataset layer's public API (what the run manager, the CLI and the UI use).
export { loadDataset, type LoadedDataset } from './load-dataset.js';
export { previewRow, type PreviewToken, type RowPreview } from './preview.js';
export { packExamples } from './pack.js';
export { DATASET_FORMATS, DATASET_ROLES, DEFAULT_DATASET_OPTIONS, type DatasetFormat, type DatasetFormatOption, type DatasetOptions } from './options.js';
export type { DatasetRole } from './containers/dataset-folder.js';
export type { DatasetReport, LengthBin } from './report.js';
export { formatProblem, type ProblemKind, type RowProblem } from './problems.js';
export { FALLBACK_CHAT_TEMPLATE } from './chat-template.js';
