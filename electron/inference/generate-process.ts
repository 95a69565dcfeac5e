// The parent's handle on one generation child (generate-worker.ts): it forks
// the child, numbers the requests, checks every message that comes back
// (generate-protocol.ts) and turns the child's death into a clear error for
// the call that was running, so that a native crash or an out-of-memory kill
// while generating costs one answer, never the app. A handle serves one
// child; after the child is gone, the owner starts a new handle.
import type { ChildProcess } from 'node:child_process';
import { ApiError, STOPPED_BEFORE_START, type GenerateResponse } from '../api/contract.js';
import { compiledWorker, forkWorker, type ForkSettings } from '../runs/compiled-worker.js';
import { parseFromWorker, type FromWorkerMessage, type GenerateJob, type ToWorkerMessage, type WorkerState } from './generate-protocol.js';

const WORKER_FILE = 'generate-worker.js';
const STDERR_TAIL_LINES = 20;
/** A line of the child's output kept for an error message is cut here. */
const MAX_LINE = 500;
/** How long a disconnected child may take to exit before it is killed. */
const STOP_GRACE_MS = 10_000;
/** How long a failed send waits for the child's exit to explain it. */
const SEND_FAILURE_GRACE_MS = 2_000;
const NATIVE_CRASH_SIGNALS = ['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT'];
const AGAIN = 'press Generate again: it starts a fresh generation process';
const ENDED = 'the generation process was ended (its models were freed); generate again to start a new one';

/** The compiled generation worker (runs/compiled-worker.ts). */
export function generateWorkerPath(): string {
  return compiledWorker(import.meta.url, 'inference', WORKER_FILE, 'generation worker');
}

/** What the user reads when the child died during a call: how it died, what to do, its last words. */
export function explainGenerationDeath(code: number | null, signal: NodeJS.Signals | null, stderrTail: readonly string[]): string {
  let how: string;
  if (signal === 'SIGKILL') {
    how = 'was killed (SIGKILL), most likely by the system because memory ran out: the model did not fit in the free memory. Close other programs or try a smaller model, then';
  } else if (signal && NATIVE_CRASH_SIGNALS.includes(signal)) {
    how = `crashed (${signal}), a fault in the engine (please report it with the output below). To go on,`;
  } else if (signal) {
    how = `was ended from outside (${signal}). To go on,`;
  } else {
    how = `exited unexpectedly (exit code ${code ?? 'unknown'}). To go on,`;
  }
  const output = stderrTail.length ? ` Last output: ${stderrTail.slice(-5).join(' | ')}` : '';
  return `the generation process ${how} ${AGAIN}.${output}`;
}

interface Pending {
  resolve: (r: GenerateResponse) => void;
  reject: (e: Error) => void;
  onProgress?: (text: string, tokens: number) => void;
}

/** How a caller follows one generation: its text as it comes, and a signal that stops it early. */
export interface GenerationCallOptions {
  /** the text the newest tokens settled, and the tokens so far (the job streams when this is given) */
  onProgress?: (text: string, tokens: number) => void;
  /**
   * aborting it ends the answer at its next token; the call still resolves, with the answer so far (stoppedBy
   * 'stopped'); aborted before any text came (its model still loading), it fails at once with STOPPED_BEFORE_START
   */
  signal?: AbortSignal;
}

export class GenerationProcess {
  private readonly child: ChildProcess;
  /** calls answered as stopped before the child answered them: their late answers are passed over */
  private readonly abandoned = new Set<number>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  private failReady!: (e: Error) => void;
  /** why the child cannot answer any more (set once it is gone or misbehaved) */
  private gone: Error | null = null;
  /** stop() asked it to end: its exit is no surprise */
  private stopping = false;
  private lastState: WorkerState = { openSessions: 0, opened: 0 };
  private readonly stderrTail: string[] = [];
  private readonly exitListeners = new Set<() => void>();
  /** resolves once the child has exited and its output is read */
  readonly exited: Promise<void>;

  /** Forks the child at once; throws when the compiled worker cannot be found. */
  constructor(settings: ForkSettings = {}) {
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    this.ready.catch(() => {}); // the calls waiting on it see the error
    const child = forkWorker(settings, generateWorkerPath);
    this.child = child;
    child.on('message', (m: unknown) => this.receive(m));
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        // output without newlines is kept to a line's worth (what output() keeps of it)
        partial = lines.pop()!.slice(0, MAX_LINE + 1);
        for (const line of lines) this.output(line);
      });
      stream?.on('end', () => partial && this.output(partial));
    }
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.fail(new ApiError({ code: 'failed', message: `the generation process could not be started (${err.message}); ${AGAIN}` }));
        if (child.exitCode === null && child.signalCode === null && child.pid === undefined) resolve();
      });
      // Output may still be in the pipes when 'exit' fires: wait for them to
      // close. (Not for the child's 'close': after the parent disconnects
      // first, Node 20 never emits it.)
      const outputRead = Promise.all([child.stdout, child.stderr].map((s) => s && new Promise((done) => s.once('close', done))));
      child.on('exit', (code, signal) => {
        void outputRead.then(() => {
          this.fail(new ApiError({ code: 'failed', message: this.stopping ? ENDED : explainGenerationDeath(code, signal, this.stderrTail) }));
          resolve();
        });
      });
    });
    this.exited.then(() => {
      for (const l of [...this.exitListeners]) l();
    });
    this.hold(false);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the child can still take requests. */
  get alive(): boolean {
    return this.gone === null;
  }

  /** What the child holds, as of its last answer (nothing once it is gone). */
  get state(): WorkerState {
    return this.gone ? { openSessions: 0, opened: this.lastState.opened } : { ...this.lastState };
  }

  /** Calls `listener` once the child has exited. */
  onExit(listener: () => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  /** Runs one generation in the child; rejects with an ApiError (the child's error, or how it died). */
  async generate(job: Omit<GenerateJob, 'stream'>, options: GenerationCallOptions = {}): Promise<GenerateResponse> {
    if (this.gone) throw this.gone;
    const id = this.nextId++;
    const { onProgress, signal } = options;
    let progressed = false;
    const progress = onProgress && ((text: string, tokens: number) => {
      progressed = true;
      onProgress(text, tokens);
    });
    const answer = new Promise<GenerateResponse>((resolve, reject) => this.pending.set(id, { resolve, reject, onProgress: progress }));
    this.hold(true);
    const stop = () => {
      const waiting = this.pending.get(id);
      if (!waiting || this.gone) return;
      this.send({ type: 'stop', id });
      if (progressed || !onProgress) return;
      // Nothing generated yet (the model may take long to load): the caller is answered now; the child
      // stops at its first token and its late answer is passed over (abandoned).
      this.pending.delete(id);
      this.abandoned.add(id);
      waiting.reject(new ApiError({ code: 'failed', message: STOPPED_BEFORE_START }));
    };
    try {
      await this.ready;
      this.send({ type: 'generate', id, job: { ...job, stream: onProgress !== undefined } });
      // the child reads a stop at once, between the engine's steps
      if (signal?.aborted) stop();
      else signal?.addEventListener('abort', stop, { once: true });
      return await answer;
    } finally {
      signal?.removeEventListener('abort', stop);
      this.pending.delete(id);
      if (this.pending.size === 0) this.hold(false);
    }
  }

  /**
   * Ends the child (it frees its models as it goes) and waits for it; killed
   * if it does not exit in time, and at once while a call is in progress
   * (that call then fails with ENDED: whoever stops it needs the memory now).
   */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.stopping = true;
      this.hold(true);
      if (this.child.connected && this.pending.size === 0) this.child.disconnect();
      else this.child.kill('SIGKILL');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    this.fail(new ApiError({ code: 'failed', message: ENDED }));
  }

  private send(message: ToWorkerMessage): void {
    if (this.gone) throw this.gone;
    this.child.send(message, (err) => {
      if (!err) return;
      // Mostly the child has just died (EPIPE): its 'exit', a moment later,
      // says how. This covers a channel that failed on its own.
      setTimeout(() => {
        if (!this.gone) this.abort(`could not reach the generation process (${err.message}); ${AGAIN}`);
      }, SEND_FAILURE_GRACE_MS).unref();
    });
  }

  private receive(raw: unknown): void {
    if (this.gone) return;
    let message: FromWorkerMessage;
    try {
      message = parseFromWorker(raw);
    } catch (e) {
      return this.abort(`${(e as Error).message}; ${AGAIN}`);
    }
    if (message.type === 'ready') return this.markReady();
    const waiting = this.pending.get(message.id);
    if (!waiting && this.abandoned.has(message.id)) {
      // a call answered when it was stopped before its text came: its late answer ends it here
      if (message.type !== 'progress') {
        this.abandoned.delete(message.id);
        this.lastState = message.state;
      }
      return;
    }
    if (!waiting) return this.abort(`the generation process answered request ${message.id}, which is not waiting; ${AGAIN}`);
    if (message.type === 'progress') return waiting.onProgress?.(message.text, message.tokens);
    this.pending.delete(message.id);
    this.lastState = message.state;
    if (message.type === 'generated') waiting.resolve(message.response);
    else waiting.reject(new ApiError(message.error));
  }

  /** A child that broke the protocol cannot be trusted with the next request: end it. */
  private abort(message: string): void {
    this.fail(new ApiError({ code: 'failed', message }));
    this.child.kill('SIGKILL');
  }

  /** From now on every call, waiting or new, gets `error`. */
  private fail(error: ApiError): void {
    if (this.gone) return;
    this.gone = error;
    this.failReady(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.hold(false);
  }

  private output(line: string): void {
    this.stderrTail.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
  }

  /**
   * Whether the child keeps this process alive: only while a call waits for
   * it (or it is being stopped). An idle child must not, as an idle cache
   * did not before; it ends by itself when this process does.
   */
  private hold(held: boolean): void {
    const handles = [this.child, this.child.channel, this.child.stdout, this.child.stderr] as ({ ref?: () => void; unref?: () => void } | null | undefined)[];
    for (const h of handles) (held ? h?.ref : h?.unref)?.call(h);
  }
}
