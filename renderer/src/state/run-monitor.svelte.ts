// What the Train page shows of one run, built from its RunEvents (live) or
// from its run folder's history (a past run): the chart points, progress,
// speed, ETA, memory, the log, and the state that enables pause / resume /
// cancel. No API calls here: the page feeds it, tests replay real events.
import type { RunEvent, RunHistory, RunIndexEntry, RunStatus, SettingWarning } from '../../../electron/api/contract.js';
import { describeBest } from '../../../electron/runs/best-words.js';

/**
 * A step event. `inputTokensPerSecond` (every token the model read this step,
 * prompts included) may be missing in events recorded by older versions:
 * then only the trained tokens' speed is known.
 */
type StepEvent = Omit<Extract<RunEvent, { type: 'step' }>, 'inputTokens' | 'inputTokensPerSecond'> & { inputTokens?: number; inputTokensPerSecond?: number };
type FailedEvent = Extract<RunEvent, { type: 'failed' }>;
/** A started event; `warnings` may be missing in events recorded by older versions (then none is known). */
type StartedEvent = Omit<Extract<RunEvent, { type: 'started' }>, 'warnings'> & { warnings?: SettingWarning[] };
export type MemoryUsage = StepEvent['memory'];
export type RunSummary = Extract<RunEvent, { type: 'finished' }>['summary'];

/** 'waiting': nothing heard yet; 'interrupted': the history says the process died mid-run. */
export type MonitorStatus = 'waiting' | RunStatus;

export interface TrainPoint {
  step: number;
  loss: number;
  lr: number;
}
export interface EvalPoint {
  step: number;
  evalLoss: number;
}
export interface LogLine {
  level: 'info' | 'warning' | 'error';
  message: string;
}

/**
 * A run's status in the app's words, the same on the Train and the Runs
 * page ('missing': the Runs table's run whose folder is gone).
 */
export const STATUS_WORDS: Record<MonitorStatus | 'missing', string> = {
  waiting: 'starting…',
  running: 'training',
  paused: 'paused',
  finished: 'finished',
  cancelled: 'cancelled',
  failed: 'failed',
  interrupted: 'interrupted',
  missing: 'folder missing',
};

/** The status in words; a cancelled run that the app's shutdown stopped (not the user) reads "stopped". */
export function statusWords(status: MonitorStatus | 'missing', stoppedBy: StopCause | null | undefined = null): string {
  return status === 'cancelled' && stoppedBy === 'shutdown' ? 'stopped' : STATUS_WORDS[status];
}

/** The status badge's colour class. */
export function statusBadge(status: MonitorStatus | 'missing'): 'ok' | 'bad' | 'accent' | 'warn' {
  if (status === 'finished') return 'ok';
  if (status === 'failed' || status === 'interrupted' || status === 'missing') return 'bad';
  if (status === 'running') return 'accent';
  return 'warn';
}

/** The first line of a log rebuilt from a run's record (the service keeps no log lines). */
export const EARLIER_LOG_NOTE = 'Messages logged before this page opened are not kept; the run\'s record shows its steps (charted) and evaluations:';

/** The log keeps this many lines (a long run logs little, but a loop of warnings must not eat memory). */
export const LOG_LIMIT = 2000;

/** JSON carries NaN as null: both mean "not known yet". */
function known(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/**
 * Appends a point in place, first dropping any at or after its step: a
 * resumed run repeats the steps after its checkpoint, and the repeat is what
 * happened. (In place: a burst of steps copies the series once, not per step.)
 */
function pushByStep<T extends { step: number }>(points: T[], point: T): void {
  while (points.length > 0 && points[points.length - 1].step >= point.step) points.pop();
  points.push(point);
}

function appendByStep<T extends { step: number }>(points: readonly T[], point: T): T[] {
  const next = points.slice();
  pushByStep(next, point);
  return next;
}

/** The step of a checkpoint folder (…/checkpoints/step-K), or null. */
export function checkpointStep(dir: string | null): number | null {
  const m = dir === null ? null : /(?:^|[\\/])step-(\d+)[\\/]*$/.exec(dir);
  return m ? Number(m[1]) : null;
}

/**
 * Who stopped a cancelled run: the user (Cancel), or PEFT Studio shutting
 * down (closed, or its server stopped), which cancels its runs with a
 * checkpoint. (The Node side does not tell them apart yet; see the UI fix
 * report: CancelledEvent.reason / RunIndexEntry.stopped_by.)
 */
export type StopCause = 'user' | 'shutdown';

/**
 * A cancelled run, in the app's words: where it stopped, whether a checkpoint
 * was kept, and that Resume is the way on (the run's own message is the
 * CLI's, with a `train --resume` command line).
 */
export function cancelledMessage(step: number, totalSteps: number | null, checkpoint: number | null, cause: StopCause = 'user'): string {
  const verb = cause === 'shutdown' ? 'Stopped' : 'Cancelled';
  const because = cause === 'shutdown' ? ' because PEFT Studio shut down (it was closed, or its server stopped)' : '';
  const where = step === 0 ? `${verb} before the first step finished${because}` : `${verb} after step ${step}${totalSteps ? ` of ${totalSteps}` : ''}${because}`;
  if (checkpoint !== null) return `${where}; a checkpoint at step ${checkpoint} was saved — Resume continues from it.`;
  return step === 0 ? `${where}; nothing was saved.` : `${where}; no checkpoint was saved, so a resume starts over from step 0.`;
}

/** What a run folder's record says of its ending, in the app's words where they differ from the CLI's. */
export function entryMessage(entry: RunIndexEntry): string | null {
  // a cancelled run's checkpoint is its `adapter` (the newest checkpoint until it finishes)
  if (entry.status === 'cancelled') return cancelledMessage(entry.steps_done, entry.total_steps, checkpointStep(entry.adapter), entry.stopped_by ?? 'user');
  // the record's own text tells a CLI user what to type; here the way on is the Resume button
  if (entry.status === 'interrupted') {
    const from = checkpointStep(entry.adapter);
    return `Interrupted after step ${entry.steps_done}: the training process is gone (a crash, a kill, or the app closed). ${from !== null ? `Resume continues from the checkpoint at step ${from}.` : 'Resume starts it again from the beginning.'}`;
  }
  return entry.message;
}

export class RunMonitor {
  status = $state<MonitorStatus>('waiting');
  method = $state<string | null>(null);
  engine = $state<string | null>(null);
  totalSteps = $state<number | null>(null);
  /** optimizer steps done */
  step = $state(0);
  /** the step a resumed run continued from (0: fresh) */
  startStep = $state(0);
  trainExamples = $state<number | null>(null);
  evalExamples = $state<number | null>(null);
  memoryEstimateBytes = $state<number | null>(null);
  availableMemoryBytes = $state<number | null>(null);

  // Chart series: replaced (never mutated) on each point so the charts see a new array.
  points = $state.raw<TrainPoint[]>([]);
  evals = $state.raw<EvalPoint[]>([]);
  bestEvalLoss = $state<number | null>(null);

  /** trained tokens (those the loss counts) per second */
  tokensPerSecond = $state<number | null>(null);
  /** every token the model read per second (prompts too), when the run reports it */
  inputTokensPerSecond = $state<number | null>(null);
  etaSeconds = $state<number | null>(null);
  elapsedSeconds = $state<number | null>(null);
  memory = $state.raw<MemoryUsage | null>(null);

  /**
   * The settings of this run (its newest session) that look like a slip, in
   * the app's words: from the started event, else from the run's record;
   * null until either said (the log has them too, in the command line's words).
   */
  warnings = $state.raw<SettingWarning[] | null>(null);

  log = $state.raw<LogLine[]>([]);
  lastCheckpoint = $state.raw<{ step: number; dir: string; bytes: number } | null>(null);

  /** how it ended, in words (cancelled / failed / interrupted) */
  message = $state<string | null>(null);
  /** a cancelled run: who stopped it (the user, or the app shutting down); null otherwise */
  stoppedBy = $state<StopCause | null>(null);
  failureKind = $state<FailedEvent['kind'] | null>(null);
  /** whether resumeRun can continue it */
  resumable = $state(false);
  summary = $state.raw<RunSummary | null>(null);
  /** a finished run that early stopping ended: why ("stopped early at step 420: ..."); null otherwise */
  stoppedEarly = $state<string | null>(null);
  /** a finished run with keep-best: the adapter of its lowest eval loss (the run folder's best/) */
  best = $state.raw<{ dir: string; step: number; eval_loss: number } | null>(null);

  /** whether live events have arrived (a history loaded later must not overrule them) */
  private heardLive = false;
  /** the cancelled event heard live: its words again once the run's length is known */
  private cancelledAt: { step: number; checkpoint: number | null } | null = null;

  get progress(): number | null {
    // a finished run is done, whatever its step count (0 steps included)
    if (this.status === 'finished') return 1;
    if (!this.totalSteps) return null;
    return Math.min(1, Math.max(0, this.step / this.totalSteps));
  }
  get live(): boolean {
    return this.status === 'waiting' || this.status === 'running' || this.status === 'paused';
  }
  get canPause(): boolean {
    return this.status === 'running';
  }
  get canResume(): boolean {
    return this.status === 'paused';
  }
  get canCancel(): boolean {
    return this.status === 'running' || this.status === 'paused';
  }
  /** ended, and resumeRun can continue it */
  get canResumeRun(): boolean {
    return !this.live && this.resumable;
  }
  get latestLoss(): number | null {
    return this.points.length > 0 ? this.points[this.points.length - 1].loss : null;
  }

  private say(level: LogLine['level'], message: string): void {
    const next = this.log.length >= LOG_LIMIT ? this.log.slice(this.log.length - LOG_LIMIT + 1) : this.log.slice();
    next.push({ level, message });
    this.log = next;
  }

  /**
   * A new session of this run was started (a resume) and has not reported
   * yet: the old ending no longer holds, and it must not be resumed twice.
   */
  awaitSession(): void {
    this.status = 'waiting';
    this.message = null;
    this.stoppedBy = null;
    this.failureKind = null;
    this.resumable = false;
    this.etaSeconds = null;
  }

  /**
   * Live events in order, as one change: the step series is copied once for
   * the whole burst, and what watches the monitor sees only the end result.
   */
  applyAll(events: readonly RunEvent[]): void {
    let points: TrainPoint[] | null = null;
    let lastStep: StepEvent | null = null;
    // the steps so far take effect before any other event (an end event sets the final figures)
    const commit = () => {
      if (points) this.points = points;
      if (lastStep) this.takeStepStats(lastStep);
      points = null;
      lastStep = null;
    };
    for (const e of events) {
      if (e.type !== 'step') {
        commit();
        this.apply(e);
        continue;
      }
      this.heardLive = true;
      if (this.status === 'waiting') this.status = 'running';
      points ??= this.points.slice();
      pushByStep(points, { step: e.step, loss: e.loss, lr: e.lr });
      lastStep = e;
      this.step = e.step;
      this.totalSteps = e.totalSteps;
    }
    commit();
  }

  private takeStepStats(e: StepEvent): void {
    this.tokensPerSecond = known(e.tokensPerSecond);
    this.inputTokensPerSecond = known(e.inputTokensPerSecond);
    this.etaSeconds = known(e.etaSeconds);
    this.elapsedSeconds = known(e.elapsedSeconds);
    this.memory = e.memory;
  }

  /** One live event (a started event of an older version may lack its warnings). */
  apply(e: Exclude<RunEvent, { type: 'started' }> | StartedEvent): void {
    // a log line, a checkpoint or an evaluation says nothing of the run's status: the record's still holds
    if (e.type !== 'log' && e.type !== 'checkpoint' && e.type !== 'eval') this.heardLive = true;
    switch (e.type) {
      case 'started':
        this.status = 'running';
        this.warnings = e.warnings ?? [];
        this.method = e.method;
        this.engine = e.engine;
        this.totalSteps = e.totalSteps;
        this.startStep = e.startStep;
        this.step = e.startStep;
        this.trainExamples = e.trainExamples;
        this.evalExamples = e.evalExamples;
        this.memoryEstimateBytes = e.memoryEstimateBytes;
        this.availableMemoryBytes = e.availableMemoryBytes;
        this.message = null;
        this.stoppedBy = null;
        this.failureKind = null;
        this.resumable = false;
        this.say('info', e.resumedFrom === null
          ? `started: ${e.totalSteps} steps, ${e.trainExamples} training and ${e.evalExamples} eval examples${e.evalData ? ` (from ${e.evalData.file})` : ''}; ${e.engine}`
          : `resumed from the checkpoint at step ${e.resumedFrom} of ${e.totalSteps}; ${e.engine}`);
        return;
      case 'step':
        if (this.status === 'waiting') this.status = 'running';
        this.step = e.step;
        this.totalSteps = e.totalSteps;
        this.points = appendByStep(this.points, { step: e.step, loss: e.loss, lr: e.lr });
        this.takeStepStats(e);
        return;
      case 'eval':
        this.evals = appendByStep(this.evals, { step: e.step, evalLoss: e.evalLoss });
        this.bestEvalLoss = known(e.bestEvalLoss);
        this.say('info', `eval at step ${e.step}: loss ${e.evalLoss.toFixed(4)} (best ${e.bestEvalLoss.toFixed(4)})`);
        return;
      case 'log':
        this.say(e.level, e.message);
        return;
      case 'checkpoint':
        this.lastCheckpoint = { step: e.step, dir: e.dir, bytes: e.bytes };
        this.say('info', `checkpoint at step ${e.step}: ${e.dir}`);
        return;
      case 'paused':
        this.status = 'paused';
        this.step = Math.max(this.step, e.step);
        this.say('info', `paused after step ${e.step}`);
        return;
      case 'resumed':
        this.status = 'running';
        this.say('info', `resumed at step ${e.step}`);
        return;
      case 'finished':
        this.status = 'finished';
        this.summary = e.summary;
        this.step = e.summary.steps;
        this.etaSeconds = null; // nothing is left: the page says finished, not "0 s left"
        this.elapsedSeconds = known(e.summary.elapsed_s) ?? this.elapsedSeconds;
        this.resumable = false;
        this.message = null;
        this.stoppedBy = null;
        this.stoppedEarly = e.summary.stopped_early ?? null;
        this.best = e.summary.best ?? null;
        if (this.stoppedEarly) this.say('info', this.stoppedEarly);
        this.say('info', `finished: ${e.summary.steps} steps, final loss ${e.summary.final_loss?.toFixed(4) ?? '–'}` +
          (e.summary.final_eval_loss === null ? '' : `, final eval loss ${e.summary.final_eval_loss.toFixed(4)}`));
        if (this.best) this.say('info', describeBest(this.best));
        return;
      case 'cancelled':
        this.status = 'cancelled';
        this.step = Math.max(this.step, e.step);
        this.etaSeconds = null;
        this.cancelledAt = { step: e.step, checkpoint: e.checkpoint === null ? null : (checkpointStep(e.checkpoint) ?? e.step) };
        this.message = cancelledMessage(e.step, this.totalSteps, this.cancelledAt.checkpoint, e.reason ?? 'user');
        this.stoppedBy = e.reason ?? 'user';
        this.resumable = e.checkpoint !== null;
        this.say('info', this.message);
        return;
      case 'failed':
        this.status = 'failed';
        if (e.step !== null) this.step = Math.max(this.step, e.step);
        this.etaSeconds = null;
        this.message = e.message;
        this.failureKind = e.kind;
        this.resumable = e.resumable;
        this.say('error', e.message);
        return;
    }
  }

  /**
   * What the log can show of the time before this page opened: the service
   * keeps no log lines, but the record has the evaluations (with the best
   * so far, as the live line says it). Goes before any line heard live.
   */
  private logFromHistory(h: RunHistory, firstLiveEval: number): void {
    if (h.steps.length === 0 && h.evals.length === 0) return;
    if (this.log.some((l) => l.message === EARLIER_LOG_NOTE)) return;
    let best = Infinity;
    const earlier: LogLine[] = [{ level: 'info', message: EARLIER_LOG_NOTE }];
    // the time estimate said before the first step, as the service kept it (unless heard live)
    const timeLine = h.live?.timeLine ?? null;
    if (timeLine !== null && !this.log.some((l) => l.message === timeLine)) earlier.push({ level: 'info', message: timeLine });
    for (const e of h.evals) {
      if (e.step >= firstLiveEval) break;
      best = Math.min(best, e.evalLoss);
      earlier.push({ level: 'info', message: `eval at step ${e.step}: loss ${e.evalLoss.toFixed(4)} (best ${best.toFixed(4)})` });
    }
    const all = [...earlier, ...this.log];
    this.log = all.length > LOG_LIMIT ? all.slice(all.length - LOG_LIMIT) : all;
  }

  /**
   * A run folder's history: the charts of a past run, or what a live run
   * did before this page subscribed. Points already heard live win.
   */
  loadHistory(h: RunHistory): void {
    const firstLive = this.points.length > 0 ? this.points[0].step : Infinity;
    const before = h.steps.filter((s) => s.step < firstLive).map((s) => ({ step: s.step, loss: s.loss, lr: s.lr }));
    this.points = [...before, ...this.points];
    const firstLiveEval = this.evals.length > 0 ? this.evals[0].step : Infinity;
    this.evals = [...h.evals.filter((e) => e.step < firstLiveEval).map((e) => ({ step: e.step, evalLoss: e.evalLoss })), ...this.evals];
    const losses = this.evals.map((e) => e.evalLoss);
    this.bestEvalLoss = losses.length > 0 ? Math.min(...losses) : known(h.entry.best_eval_loss);
    this.method ??= h.entry.method;
    // a started event heard live is this session's word; the record's are the newest session's too
    this.warnings ??= h.warnings ?? [];
    this.logFromHistory(h, firstLiveEval);
    // the figures of its last recorded step, unless a live step said them since: the speed (trained and
    // read tokens, as a live step says it), the elapsed time; the memory as the live events last said it
    const last = h.steps[h.steps.length - 1];
    if (!this.heardLive) {
      if (last) {
        this.tokensPerSecond = known(last.tokensPerSecond);
        this.inputTokensPerSecond = known(last.inputTokensPerSecond ?? null);
      }
      this.elapsedSeconds = known(h.live?.elapsedSeconds ?? null) ?? known(last?.elapsedSeconds ?? null);
      this.memory = h.live?.memory ?? null;
      this.memoryEstimateBytes = h.live?.memoryEstimateBytes ?? null;
      this.availableMemoryBytes = h.live?.availableMemoryBytes ?? null;
    } else {
      // heard live, but not every figure (a checkpoint and the ending, say): the record says the rest
      if (last && this.tokensPerSecond === null) {
        this.tokensPerSecond = known(last.tokensPerSecond);
        this.inputTokensPerSecond = known(last.inputTokensPerSecond ?? null);
      }
      this.elapsedSeconds ??= known(h.live?.elapsedSeconds ?? null) ?? known(last?.elapsedSeconds ?? null);
      this.memory ??= h.live?.memory ?? null;
      this.memoryEstimateBytes ??= h.live?.memoryEstimateBytes ?? null;
      this.availableMemoryBytes ??= h.live?.availableMemoryBytes ?? null;
      if (this.totalSteps === null && h.entry.total_steps !== null) {
        this.totalSteps = h.entry.total_steps;
        // the ending's words were said before the run's length was known
        if (this.status === 'cancelled' && this.cancelledAt) this.message = cancelledMessage(this.cancelledAt.step, this.totalSteps, this.cancelledAt.checkpoint, this.stoppedBy ?? 'user');
      }
    }
    if (this.heardLive) return;
    // nothing live yet: the folder's record is the truth
    this.status = h.entry.status === 'missing' ? 'interrupted' : h.entry.status;
    this.totalSteps = h.entry.total_steps;
    this.step = Math.max(h.entry.steps_done, before.length > 0 ? before[before.length - 1].step : 0);
    this.resumable = h.entry.resumable;
    this.message = entryMessage(h.entry);
    this.stoppedBy = h.entry.status === 'cancelled' ? (h.entry.stopped_by ?? 'user') : null;
    this.stoppedEarly = h.entry.stop_reason ?? null;
    this.best = h.entry.best ?? null;
    this.etaSeconds = null;
    // a session runs in this folder but its worker has not written the
    // record yet: the ending on file is the previous session's
    if (h.runId !== null && !this.live) this.awaitSession();
  }
}
