// run.json: how a run was made (the settings and what they resolved to) and
// where it stands (status, the process that trains it, progress, best eval
// loss). Rewritten atomically on every change of status, at checkpoints and
// every few seconds of progress, so a reader never sees half a file.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { writeFileAtomic } from '../files/atomic.js';
import { DATASET_FORMATS, type DatasetFormat } from '../data/options.js';
import { LATER_DEFAULTS, type TrainConfig } from '../training/config.js';
import type { RunSummary } from '../training/run.js';
import { FORM_LABEL, type SettingWarning, type WarnedSetting } from '../training/warnings.js';
import type { RunStatus, StopCause } from './events.js';
import { runPaths } from './layout.js';
import { processStartTicks } from './process-alive.js';

export interface RunRecord {
  config: TrainConfig;
  /** values known once the model and data are read (total steps, parameters, engine) */
  resolved: Record<string, unknown> | null;
  status: RunStatus;
  /** the process training it (while running or paused) */
  pid: number | null;
  /** the kernel's start time of that process (Linux), to tell it from a later one with the same pid */
  pid_start: number | null;
  host: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  steps_done: number;
  total_steps: number | null;
  best_eval_loss: number | null;
  /** the step of best_eval_loss (absent in records of older versions) */
  best_eval_step?: number | null;
  last_eval_loss: number | null;
  /** step of the newest complete checkpoint */
  last_checkpoint: number | null;
  /** why it stopped (failed, cancelled, interrupted) */
  message: string | null;
  /** a cancelled run: who stopped it (absent in records of older versions: the user) */
  stopped_by?: StopCause | null;
  /** a finished run that --early-stop ended: why (absent otherwise, and in records of older versions) */
  stop_reason?: string | null;
  /** sha256 of the data file when the run started: a resume must see the same data */
  data_sha256: string | null;
  /** sha256 of the evaluation file (config.evalData) when the run started; null: none (absent in records of older versions) */
  eval_data_sha256?: string | null;
  /** one entry per `train --resume` */
  resumes: { at: string; from_step: number }[];
  summary: RunSummary | null;
}

export class RunRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunRecordError';
  }
}

export function newRunRecord(config: TrainConfig): RunRecord {
  const now = new Date().toISOString();
  return {
    config,
    resolved: null,
    status: 'running',
    pid: process.pid,
    pid_start: processStartTicks(process.pid),
    host: hostname(),
    created_at: now,
    updated_at: now,
    finished_at: null,
    steps_done: 0,
    total_steps: null,
    best_eval_loss: null,
    last_eval_loss: null,
    last_checkpoint: null,
    message: null,
    data_sha256: null,
    eval_data_sha256: null,
    resumes: [],
    summary: null,
  };
}

/** Reads DIR/run.json; null when the folder has none. */
export async function readRunRecord(dir: string): Promise<RunRecord | null> {
  const file = runPaths(dir).runFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') throw new RunRecordError(`${dir}: is not a folder; give the run folder (the --out of the run)`);
    throw new RunRecordError(`${file}: cannot be read (${code ?? String(e)}); check its permissions`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new RunRecordError(`${file}: is not valid JSON (${(e as Error).message}); the run folder is damaged`);
  }
  if (typeof json !== 'object' || json === null || typeof json.config !== 'object' || json.config === null) {
    throw new RunRecordError(`${file}: has no "config" object; this is not a run folder of peft-studio train`);
  }
  // run.json files written before statuses existed describe finished runs.
  const base = newRunRecord({ ...LATER_DEFAULTS, ...(json.config as TrainConfig) });
  return { ...base, pid: null, pid_start: null, status: 'finished', created_at: '', updated_at: '', ...(json as Partial<RunRecord>), config: base.config };
}

export async function writeRunRecord(dir: string, record: RunRecord): Promise<void> {
  record.updated_at = new Date().toISOString();
  await writeFileAtomic(runPaths(dir).runFile, JSON.stringify(record, null, 2) + '\n');
}

const WARNED_SETTINGS = Object.keys(FORM_LABEL).filter((k) => k !== 'lr') as WarnedSetting[];

/**
 * The warnings the run's newest session judged its settings by
 * (resolved.warnings, written when it started): none in a record of an older
 * version or one not started yet. A damaged entry is left out, not fatal: it
 * only ever adds a notice.
 */
export function recordedWarnings(record: RunRecord): SettingWarning[] {
  const list = record.resolved?.warnings;
  if (!Array.isArray(list)) return [];
  const warnings: SettingWarning[] = [];
  for (const w of list as unknown[]) {
    if (typeof w !== 'object' || w === null) continue;
    const { fields, cli, app } = w as Record<string, unknown>;
    if (typeof cli !== 'string' || typeof app !== 'string' || !Array.isArray(fields)) continue;
    warnings.push({ fields: fields.filter((f): f is WarnedSetting => WARNED_SETTINGS.includes(f as WarnedSetting)), cli, app });
  }
  return warnings;
}

/**
 * The format the run's rows were read in: what `auto` resolved to
 * (resolved.data.format, written when it started), else the configured one;
 * null for a run not started yet with format `auto`, or a damaged entry.
 */
export function recordedDataFormat(record: RunRecord): DatasetFormat | null {
  const data = record.resolved?.data;
  const resolved = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).format : undefined;
  const known = (f: unknown): f is DatasetFormat => typeof f === 'string' && f !== 'auto' && (DATASET_FORMATS as readonly string[]).includes(f);
  if (known(resolved)) return resolved;
  return known(record.config.dataFormat) ? record.config.dataFormat : null;
}
