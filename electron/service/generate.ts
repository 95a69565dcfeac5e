// generate: the try page's "continue this prompt", with the base model or
// with an adapter. The work runs in a generation child process
// (electron/inference/generate-process.ts), never in this one: there it
// computes on the GPU when the machine has one (device and precision 'auto')
// without this process ever holding a CUDA context, and a native crash or an
// out-of-memory kill costs one answer with a clear error, not the app (the
// next call starts a fresh child). The child keeps the last two models open
// (generate-sessions.ts); calls run one at a time: an engine decodes one
// sequence at once. Each open model holds its own copy of the base weights,
// so the child is ended (its models freed) before a run starts (the run
// service asks), after IDLE_RELEASE_MS without a call, and on close.
// A call with a requestId streams its text (onProgress) and can be stopped
// (stop): running, it ends at its next token with the answer so far;
// still queued, or before any of its text came (its model still loading), it
// fails with STOPPED_BEFORE_START at once.
import { defaultThreads } from '../system/machine.js';
import type { GenerateRequest, GenerateResponse } from '../api/contract.js';
import type { DeviceRequest } from '../engine/device.js';
import type { Precision } from '../engine/native.js';
import { GenerationProcess, type GenerationCallOptions } from '../inference/generate-process.js';
import { electronForkSettings, type ForkSettings } from '../runs/manager.js';
import { failed, invalid } from './errors.js';

export { resolveAdapter } from '../inference/generate-sessions.js';

/** The notice of an answer computed on the CPU because a run holds the GPU. */
export const GPU_TAKEN = 'a training run is using the GPU, so this answer was computed on the CPU (slower); it moves back to the GPU when the run ends';

export { STOPPED_BEFORE_START } from '../api/contract.js';
import { STOPPED_BEFORE_START } from '../api/contract.js';

/** What a caller's requestId may be: it travels in events and in stopGenerate. */
export const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Open models nobody has used for this long are freed. */
export const IDLE_RELEASE_MS = 5 * 60_000;

export interface GeneratorOptions {
  /** free the open models after this long without a call (default IDLE_RELEASE_MS) */
  idleMs?: number;
  /** how the child is started (default: Electron's binary as Node inside the app, else this runtime) */
  fork?: ForkSettings;
  /** where the child computes (default 'auto': the first NVIDIA GPU, else the CPU) */
  device?: DeviceRequest;
  /** precision of the dense products (default 'auto': bf16 on a GPU with bf16 tensor cores, else fp32) */
  precision?: Precision;
  /** CPU threads of the engine (default: all the machine has) */
  threads?: number;
  /** whether a training run may hold the GPU now: then calls generate on the CPU (default: never) */
  gpuBusy?: () => boolean;
}

export class Generator {
  private child: GenerationProcess | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** calls queued or running */
  private pending = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly idleMs: number;
  private readonly fork: ForkSettings;
  private readonly device: DeviceRequest;
  private readonly precision: Precision;
  private readonly threads: number;

  private readonly gpuBusy: () => boolean;
  /** the calls with a requestId, queued or running, and what stops each */
  private readonly stoppable = new Map<string, AbortController>();

  constructor(options: GeneratorOptions = {}) {
    this.gpuBusy = options.gpuBusy ?? (() => false);
    this.idleMs = options.idleMs ?? IDLE_RELEASE_MS;
    this.fork = options.fork ?? (process.versions.electron ? electronForkSettings() : {});
    this.device = options.device ?? 'auto';
    this.precision = options.precision ?? 'auto';
    this.threads = options.threads ?? defaultThreads();
  }

  /** How many models are open now (in the child, as of its last answer; 0 when there is no child). */
  get openSessions(): number {
    return this.child?.state.openSessions ?? 0;
  }

  /** How many models the current child has opened since it started (a cache hit does not count). */
  get modelsOpened(): number {
    return this.child?.state.opened ?? 0;
  }

  /** The generation child's process id, while there is one. */
  get workerPid(): number | null {
    return this.child?.alive ? (this.child.pid ?? null) : null;
  }

  /** Queues one generation; onProgress gets its text as it comes (the text the newest tokens settled, and the tokens so far). */
  generate(req: GenerateRequest, onProgress?: (text: string, tokens: number) => void): Promise<GenerateResponse> {
    if (this.closing) return Promise.reject(failed('PEFT Studio is shutting down, so it cannot generate now; try again once PEFT Studio is running'));
    const { requestId } = req;
    if (requestId !== undefined && this.stoppable.has(requestId)) {
      return Promise.reject(invalid('requestId', `requestId ${requestId} is in use by an answer still being generated; give each call its own`));
    }
    const controller = new AbortController();
    if (requestId !== undefined) this.stoppable.set(requestId, controller);
    this.stopIdleTimer();
    this.pending += 1;
    const next = this.queue
      .then(() => {
        if (controller.signal.aborted) throw failed(STOPPED_BEFORE_START);
        return this.run(req, { onProgress, signal: controller.signal });
      })
      .finally(() => {
        if (requestId !== undefined) this.stoppable.delete(requestId);
        this.pending -= 1;
        if (this.pending === 0) this.startIdleTimer();
      });
    this.queue = next.catch(() => {});
    return next;
  }

  /** Stops the call with this requestId; false when there is none (it has ended, or never was). */
  stop(requestId: string): boolean {
    const controller = this.stoppable.get(requestId);
    if (!controller || controller.signal.aborted) return false;
    controller.abort();
    return true;
  }

  /**
   * Ends the child now, freeing its models (a run is about to start and needs
   * the memory, or the app quits): a call in progress fails with "the
   * generation process was ended", and a later generate starts a new child.
   */
  release(): Promise<void> {
    this.stopIdleTimer();
    const child = this.child;
    this.child = null;
    return child ? child.stop() : Promise.resolve();
  }

  /** Refuses new calls and ends the child (a call in progress fails). */
  async close(): Promise<void> {
    this.closing = true;
    await this.release();
  }

  private startIdleTimer(): void {
    this.stopIdleTimer();
    if (!this.child?.alive || this.closing) return;
    this.idleTimer = setTimeout(() => void this.release(), this.idleMs);
    // an idle cache must not keep the process alive
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** The live child, or a new one (the first call, or the last one died). */
  private worker(): GenerationProcess {
    if (this.child?.alive) return this.child;
    const child = new GenerationProcess(this.fork);
    child.onExit(() => {
      if (this.child === child) this.child = null;
    });
    this.child = child;
    return child;
  }

  private async run(req: GenerateRequest, options: GenerationCallOptions): Promise<GenerateResponse> {
    // A run that may hold a GPU keeps it: generate on the CPU meanwhile (and say so).
    const gpuTaken = this.device !== 'cpu' && this.gpuBusy();
    const device: DeviceRequest = gpuTaken ? 'cpu' : this.device;
    const { requestId: _, ...request } = req;
    const job = { ...request, promptFormat: req.promptFormat ?? 'plain', system: req.system ?? '', device, precision: gpuTaken ? 'auto' as const : this.precision, threads: this.threads };
    const response = await this.worker().generate(job, options);
    return gpuTaken ? { ...response, notices: [...response.notices, GPU_TAKEN] } : response;
  }
}
