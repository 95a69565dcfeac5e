// The typed messages between a run's parent (CLI, app, serve) and the child
// process that trains. Events flow up (child -> parent), control messages
// flow down. Everything here is plain JSON, so the same types serve the IPC
// channel today and a WebSocket later.
import type { TrainMethod } from '../training/config.js';
import type { MemoryUsage } from '../engine/native.js';
import type { TrainConfig } from '../training/config.js';
import type { RunSummary } from '../training/run.js';
import type { SettingWarning } from '../training/warnings.js';
import type { RunDataSummary } from './data-summary.js';

export type RunStatus = 'running' | 'paused' | 'cancelled' | 'failed' | 'interrupted' | 'finished';

/** Statuses from which `train --resume` continues. */
export const RESUMABLE_STATUSES: readonly RunStatus[] = ['paused', 'cancelled', 'failed', 'interrupted', 'running'];

export interface StartedEvent {
  type: 'started';
  runDir: string;
  pid: number;
  method: TrainMethod;
  totalSteps: number;
  /** optimizer steps already done (0 for a fresh run) */
  startStep: number;
  /** the checkpoint step a resumed run continues from, null when fresh */
  resumedFrom: number | null;
  trainExamples: number;
  evalExamples: number;
  /** backend, kernels and threads in words */
  engine: string;
  /** the pre-flight estimate and what the machine had free (for out-of-memory messages) */
  memoryEstimateBytes: number;
  availableMemoryBytes: number;
  /** what the data loader did with the rows (also in run.json, resolved.data) */
  data: RunDataSummary;
  /** the same of the evaluation file (--eval-data; also in run.json, resolved.eval_data); null or absent: none */
  evalData?: RunDataSummary | null;
  /**
   * this session's settings that look like a slip (electron/training/warnings.ts),
   * each with the fields it is about and in both wordings: the log's
   * "warning: " lines say the `cli` words; the app shows the `app` words
   * (also in run.json, resolved.warnings, for a page that opens later)
   */
  warnings: SettingWarning[];
}

export interface StepEvent {
  type: 'step';
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** label tokens of this step */
  tokens: number;
  tokensPerSecond: number;
  /** the data's tokens the model read this step (prompts included; padding and prompt tuning's virtual tokens not) */
  inputTokens: number;
  inputTokensPerSecond: number;
  elapsedSeconds: number;
  /** NaN until known */
  etaSeconds: number;
  memory: MemoryUsage;
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  evalLoss: number;
  bestEvalLoss: number;
}

export interface LogEvent {
  type: 'log';
  level: 'info' | 'warning';
  message: string;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  dir: string;
  bytes: number;
  seconds: number;
}

export interface PausedEvent {
  type: 'paused';
  /** optimizer steps done when the worker stopped */
  step: number;
}

export interface ResumedEvent {
  type: 'resumed';
  step: number;
}

export interface FinishedEvent {
  type: 'finished';
  summary: RunSummary;
}

/** Who stopped a run: the user (Cancel, Ctrl-C), or the app or server shutting down (its close, a vanished parent, SIGTERM). */
export type StopCause = 'user' | 'shutdown';

export interface CancelledEvent {
  type: 'cancelled';
  step: number;
  /** the checkpoint written at the stop (or the last one), null when no step was done */
  checkpoint: string | null;
  message: string;
  /** absent in events of older workers: the user */
  reason?: StopCause;
}

/**
 * error: the run stopped on an error (bad data, a setting the model rejects);
 * non-finite: NaN/Inf loss or gradient norm; crashed: the child died without
 * saying why (a native crash, a non-zero exit); killed: it died by a signal,
 * SIGKILL most likely from the out-of-memory killer.
 */
export type FailureKind = 'error' | 'non-finite' | 'crashed' | 'killed';

export interface FailedEvent {
  type: 'failed';
  kind: FailureKind;
  message: string;
  /** the last step that finished, when known */
  step: number | null;
  /** whether `train --resume` can continue it (from `checkpoint`, or from the start) */
  resumable: boolean;
  checkpoint: string | null;
}

export type RunEndEvent = FinishedEvent | CancelledEvent | FailedEvent;

export type RunEvent = StartedEvent | StepEvent | EvalEvent | LogEvent | CheckpointEvent | PausedEvent | ResumedEvent | RunEndEvent;

export function isEndEvent(e: RunEvent): e is RunEndEvent {
  return e.type === 'finished' || e.type === 'cancelled' || e.type === 'failed';
}

/** Parent -> child. `start` comes once, first. */
export type ControlMessage =
  | { type: 'start'; config: TrainConfig; resume: boolean; overwrite?: boolean }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'cancel'; reason?: StopCause };

/** Child -> parent: every message is one event. */
export type WorkerMessage = { type: 'event'; event: RunEvent };
