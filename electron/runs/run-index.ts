// The run index: $PEFT_STUDIO_HOME/runs.json (default ~/.peft-studio) lists
// every run this user started, so the app and `peft-studio runs` can show
// them without knowing where they live. Each entry is refreshed from its run
// folder when listed (the folder is the source of truth), and a run that says
// 'running' or 'paused' while its process is gone is shown as interrupted,
// resumable.
import type { TrainMethod } from '../training/config.js';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../files/atomic.js';
import { KernelFolderError, makeFolder } from '../files/make-folder.js';
import type { RunStatus, StopCause } from './events.js';
import { processState } from './process-alive.js';
import { readRunRecord, type RunRecord } from './run-record.js';

export const INDEX_FILE = 'runs.json';

export interface RunIndexEntry {
  dir: string;
  model: string;
  method: TrainMethod;
  /** 'missing' when the run folder is gone */
  status: RunStatus | 'missing';
  created: string;
  updated: string;
  steps_done: number;
  total_steps: number | null;
  best_eval_loss: number | null;
  /** where the trained adapter (full: model folder) is, once finished; else the newest checkpoint */
  adapter: string | null;
  resumable: boolean;
  message: string | null;
  /** a cancelled run: the user, or the app shutting down (null otherwise; absent in older index files) */
  stopped_by?: StopCause | null;
  /** a finished run with --keep-best: the adapter of its lowest eval loss (null or absent: none) */
  best?: { dir: string; step: number; eval_loss: number } | null;
  /** a finished run that --early-stop ended: why (null or absent otherwise) */
  stop_reason?: string | null;
  /** LoRA / QLoRA with DoRA (absent: not DoRA) */
  dora?: true;
}

export function studioHome(): string {
  return resolve(process.env.PEFT_STUDIO_HOME || join(homedir(), '.peft-studio'));
}

export function indexFile(): string {
  return join(studioHome(), INDEX_FILE);
}

async function readIndex(): Promise<RunIndexEntry[]> {
  let text: string;
  try {
    text = await readFile(indexFile(), 'utf8');
  } catch {
    return [];
  }
  try {
    const json = JSON.parse(text) as { runs?: RunIndexEntry[] };
    return Array.isArray(json.runs) ? json.runs.filter((r) => typeof r?.dir === 'string') : [];
  } catch {
    return []; // a damaged index is rebuilt from the runs that report in
  }
}

export class StudioHomeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StudioHomeError';
  }
}

/**
 * Creates the studio home (where runs.json lives) or says in one line why it
 * cannot be: which folder, who chose it (PEFT_STUDIO_HOME or the default
 * under the home folder), and what to do. Callers check it before starting
 * a run so a bad PEFT_STUDIO_HOME fails at once, not at the run's first
 * status change.
 */
export async function ensureStudioHome(): Promise<string> {
  const home = studioHome();
  const fromEnv = Boolean(process.env.PEFT_STUDIO_HOME);
  const named = fromEnv ? `PEFT_STUDIO_HOME=${process.env.PEFT_STUDIO_HOME} (${home})` : `the studio home ${home} (the default; PEFT_STUDIO_HOME chooses another)`;
  const todo = fromEnv ? 'set PEFT_STUDIO_HOME to a folder on a disk you can write to (e.g. ~/.peft-studio), or unset it' : 'set PEFT_STUDIO_HOME to a folder on a disk you can write to';
  try {
    await makeFolder(home);
  } catch (e) {
    if (e instanceof KernelFolderError) {
      throw new StudioHomeError(`${named}: is under ${e.prefix}, a kernel file system where the run index (${INDEX_FILE}) cannot be kept; ${todo}`);
    }
    const err = e as NodeJS.ErrnoException;
    throw new StudioHomeError(`${named}: cannot be created (${err.code ?? err.message}${err.path && err.path !== home ? ` on ${err.path}` : ''}); ${todo}`);
  }
  return home;
}

async function writeIndex(runs: RunIndexEntry[]): Promise<void> {
  await ensureStudioHome();
  await writeFileAtomic(indexFile(), JSON.stringify({ version: 1, runs }, null, 2) + '\n');
}

/** The status a record really has: 'running'/'paused' with a dead process is 'interrupted'. */
export function effectiveStatus(record: RunRecord): RunStatus {
  if ((record.status === 'running' || record.status === 'paused') && record.pid !== null) {
    if (processState({ pid: record.pid, host: record.host, startTicks: record.pid_start }) === 'dead') return 'interrupted';
  }
  return record.status;
}

export function entryFromRecord(dir: string, record: RunRecord): RunIndexEntry {
  const status = effectiveStatus(record);
  const checkpoint = record.last_checkpoint === null ? null : join(dir, 'checkpoints', `step-${record.last_checkpoint}`);
  return {
    dir,
    model: record.config.model,
    method: record.config.method,
    status,
    created: record.created_at,
    updated: record.updated_at,
    steps_done: record.steps_done,
    total_steps: record.total_steps,
    best_eval_loss: record.best_eval_loss,
    adapter: status === 'finished' ? dir : checkpoint,
    resumable: status !== 'finished',
    message: status === 'interrupted' && record.status !== 'interrupted' ? `the process (pid ${record.pid}) is gone; continue with peft-studio train --resume ${dir}` : record.message,
    stopped_by: status === 'cancelled' ? (record.stopped_by ?? 'user') : null,
    best: status === 'finished' ? (record.summary?.best ?? null) : null,
    stop_reason: status === 'finished' ? (record.stop_reason ?? null) : null,
    ...(record.config.lora?.dora === true ? { dora: true as const } : {}),
  };
}

/** Adds or refreshes the entry of one run (the trainer calls it on every change of status). */
export async function recordInIndex(dir: string, record: RunRecord): Promise<void> {
  const entry = entryFromRecord(resolve(dir), record);
  // Read just before writing: runs of other processes may have reported meanwhile.
  const runs = (await readIndex()).filter((r) => r.dir !== entry.dir);
  runs.push(entry);
  await writeIndex(runs);
}

/**
 * The index heard of the run's end (failed, cancelled, finished) after the last run.json its folder holds, which
 * still says running or paused: the end's run.json could not be written (a full disk), so the index's entry is
 * the newer truth. (Written by the same process: the run's updated_at is set before each write is tried.)
 */
function endedWhereFolderCouldNotSay(entry: RunIndexEntry, record: RunRecord): boolean {
  const ended = entry.status === 'failed' || entry.status === 'cancelled' || entry.status === 'finished';
  return ended && (record.status === 'running' || record.status === 'paused') && record.created_at === entry.created && entry.updated > record.updated_at;
}

/** Every indexed run, refreshed from its folder, newest first. */
export async function listRuns(): Promise<RunIndexEntry[]> {
  const out: RunIndexEntry[] = [];
  for (const entry of await readIndex()) {
    let record: RunRecord | null = null;
    try {
      record = await readRunRecord(entry.dir);
    } catch {
      record = null;
    }
    if (record && endedWhereFolderCouldNotSay(entry, record)) out.push(entry);
    else out.push(record ? entryFromRecord(entry.dir, record) : { ...entry, status: 'missing', resumable: false, message: 'the run folder is gone or damaged' });
  }
  return out.sort((a, b) => (b.created > a.created ? 1 : b.created < a.created ? -1 : 0));
}
