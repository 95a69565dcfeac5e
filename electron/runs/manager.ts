// The parent's handle on a run: it forks the worker (a child process, so a
// native crash or an out-of-memory kill ends the run, never the CLI or the
// app), relays pause/resume/cancel, and turns the child's messages into typed
// events. Exactly one end event (finished, cancelled, failed) closes every
// run; when the child dies without sending one, the handle explains the death
// and marks the run interrupted (resumable) in run.json and the index.
//
//   const run = new TrainingRun({ config }).start();
//   run.onEvent((e) => ...);            // or: for await (const e of run.events())
//   run.pause(); run.resume(); run.cancel();
//   const end = await run.wait();
import type { ChildProcess } from 'node:child_process';
import type { TrainConfig } from '../training/config.js';
import { compiledWorker, forkWorker, type ForkSettings } from './compiled-worker.js';
import { effectiveHeapLimitMiB, isHeapOutOfMemoryLine, trainingHeapArgs } from './heap-limit.js';

export { electronForkSettings, type ForkSettings } from './compiled-worker.js';
import { explainChildDeath } from './crash-report.js';
import { isEndEvent, type ControlMessage, type RunEndEvent, type RunEvent, type StartedEvent, type StopCause, type WorkerMessage } from './events.js';
import { recordInIndex } from './run-index.js';
import { readRunRecord, writeRunRecord, type RunRecord } from './run-record.js';

const WORKER_FILE = 'worker.js';

export interface StartRunOptions {
  config: TrainConfig;
  /** continue the run in config.out from its newest valid checkpoint */
  resume?: boolean;
  /** replace a finished run in config.out (else it is refused) */
  overwrite?: boolean;
  fork?: ForkSettings;
}


/** The compiled training worker (compiled-worker.ts). */
export function workerPath(): string {
  return compiledWorker(import.meta.url, 'runs', WORKER_FILE, 'training worker');
}

export type RunState = 'idle' | 'running' | 'paused' | 'ended';

const STDERR_TAIL_LINES = 20;

export class TrainingRun {
  private child: ChildProcess | null = null;
  private readonly history: RunEvent[] = [];
  private readonly listeners = new Set<(e: RunEvent) => void>();
  private end: RunEndEvent | null = null;
  private readonly ended: Promise<RunEndEvent>;
  private settle!: (e: RunEndEvent) => void;
  private runState: RunState = 'idle';
  private started: StartedEvent | null = null;
  private lastStep: number | null = null;
  private lastCheckpoint: string | null = null;
  private peakRss: number | null = null;
  private readonly stderrTail: string[] = [];
  /** the child printed V8's fatal heap error (its own stack trace follows it in the tail) */
  private heapOutOfMemory = false;
  /** the heap limit the child was started with, in MiB */
  private heapLimitMiB = 0;
  /** stopNow() was called, and by whom: the child's death is that stop, not a crash or the memory killer */
  private stopRequested: StopCause | null = null;

  constructor(readonly options: StartRunOptions) {
    this.ended = new Promise((resolve) => (this.settle = resolve));
  }

  get runDir(): string {
    return this.options.config.out;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get state(): RunState {
    return this.runState;
  }

  /** Forks the worker and sends it the run. Throws when the worker cannot be found. */
  start(): this {
    if (this.child) throw new Error('this run was already started');
    const fork = this.options.fork ?? {};
    // the heap as large as the machine allows (heap-limit.ts); a flag of the caller's own comes after and wins
    const env = fork.env ?? process.env;
    const execArgv = [...trainingHeapArgs(env), ...(fork.execArgv ?? [])];
    this.heapLimitMiB = effectiveHeapLimitMiB(env, execArgv);
    const child = forkWorker({ ...fork, execArgv }, workerPath);
    this.child = child;
    this.runState = 'running';
    child.on('message', (m: WorkerMessage) => {
      if (m?.type === 'event') this.receive(m.event);
    });
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) this.childOutput(line);
      });
      stream?.on('end', () => partial && this.childOutput(partial));
    }
    child.on('error', (err) => void this.childGone(null, null, err));
    child.on('exit', (code, signal) => {
      // Output may still be in the pipes when 'exit' fires; 'close' comes after them.
      child.once('close', () => void this.childGone(code, signal, null));
    });
    this.send({ type: 'start', config: this.options.config, resume: this.options.resume ?? false, overwrite: this.options.overwrite ?? false });
    return this;
  }

  /** Stops between optimizer steps until resume(). */
  pause(): void {
    this.send({ type: 'pause' });
  }

  resume(): void {
    this.send({ type: 'resume' });
  }

  /** Stops at the next step boundary with a checkpoint; the run stays resumable. `reason`: who stops it (the record and the app say so). */
  cancel(reason: StopCause = 'user'): void {
    this.send({ type: 'cancel', reason });
  }

  /** Ends the child at once (no checkpoint); the run is reported failed and marked interrupted. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  /**
   * The stop at once, without a checkpoint: the user's (a second Ctrl-C), or
   * the app's shutdown after its grace; reported as that, not as a crash or
   * the memory killer.
   */
  stopNow(cause: StopCause = 'user'): void {
    this.stopRequested ??= cause;
    this.kill('SIGKILL');
  }

  /** Calls `listener` for every later event; returns the unsubscribe function. */
  onEvent(listener: (e: RunEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every event of the run from its start (earlier ones replayed), ending with the end event. */
  async *events(): AsyncIterableIterator<RunEvent> {
    let next = 0;
    for (;;) {
      while (next < this.history.length) {
        const e = this.history[next++];
        yield e;
        if (isEndEvent(e)) return;
      }
      await new Promise<void>((resolve) => {
        const off = this.onEvent(() => {
          off();
          resolve();
        });
      });
    }
  }

  /** Resolves with the end event (it never rejects). */
  wait(): Promise<RunEndEvent> {
    return this.ended;
  }

  private send(message: ControlMessage): void {
    const child = this.child;
    if (!child || this.end || !child.connected) return;
    child.send(message, (err) => {
      if (err) this.childOutput(`(could not reach the training process: ${err.message})`);
    });
  }

  private receive(e: RunEvent): void {
    if (this.end) return;
    switch (e.type) {
      case 'started':
        this.started = e;
        this.lastStep = e.startStep;
        break;
      case 'step':
        this.lastStep = e.step;
        this.peakRss = e.memory.peakRssBytes;
        break;
      case 'checkpoint':
        this.lastCheckpoint = e.dir;
        break;
      case 'paused':
        this.runState = 'paused';
        break;
      case 'resumed':
        this.runState = 'running';
        break;
      default:
        break;
    }
    this.history.push(e);
    if (isEndEvent(e)) {
      this.end = e;
      this.runState = 'ended';
    }
    for (const l of [...this.listeners]) l(e);
    if (this.end === e) this.settle(e);
  }

  private childOutput(line: string): void {
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    if (isHeapOutOfMemoryLine(line)) this.heapOutOfMemory = true;
    if (!this.end) this.receive({ type: 'log', level: 'warning', message: line });
  }

  private async childGone(code: number | null, signal: NodeJS.Signals | null, error: Error | null): Promise<void> {
    if (this.end) return;
    // read once: whether there is a run to resume, and the record to mark interrupted
    const record = await readRunRecord(this.runDir).catch(() => null);
    const failed = error
      ? { type: 'failed' as const, kind: 'crashed' as const, message: `cannot start the training process: ${error.message}`, step: null, resumable: true, checkpoint: null }
      : explainChildDeath({
        code,
        signal,
        config: this.options.config,
        started: this.started,
        lastStep: this.lastStep,
        lastCheckpoint: this.lastCheckpoint,
        peakRssBytes: this.peakRss,
        stderrTail: this.stderrTail,
        heapOutOfMemory: this.heapOutOfMemory ? { limitMiB: this.heapLimitMiB } : null,
        runRecorded: record !== null,
        stoppedByUser: this.stopRequested === 'user',
        stoppedByShutdown: this.stopRequested === 'shutdown',
      });
    await this.markInterrupted(record, failed.message).catch(() => {});
    this.receive(failed);
  }

  /** run.json of a child that died while it owned the run: 'interrupted', resumable. */
  private async markInterrupted(record: RunRecord | null, message: string): Promise<void> {
    if (!record || record.pid === null || record.pid !== this.child?.pid) return;
    // a stop at once that someone asked for (a second Ctrl-C, the app's shutdown) is recorded as theirs
    Object.assign(record, { status: 'interrupted', pid: null, pid_start: null, message, stopped_by: this.stopRequested });
    await writeRunRecord(this.runDir, record);
    await recordInIndex(this.runDir, record);
  }
}
