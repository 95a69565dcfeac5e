// generate: continue a prompt with the base model, or with an adapter (an
// adapter folder, or a run folder: its final adapter, else its newest
// checkpoint). Opened models are kept for the next call (the last two, keyed
// by model, adapter and the adapter's files' times, so the "base" and
// "adapter" panes of the try page both stay warm). Calls run one at a time:
// an engine decodes one sequence at once. Each open model holds its own copy
// of the base weights, so they are released before a run starts (the run
// service asks), after IDLE_RELEASE_MS without a call, and on close.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { GenerateRequest, GenerateResponse } from '../api/contract.js';
import type { QuantizationOptions } from '../engine/native.js';
import { generate } from '../inference/generate.js';
import { readGenerationConfig } from '../models/generation-config.js';
import { entryFromRecord } from '../runs/run-index.js';
import { readRunRecord } from '../runs/run-record.js';
import { openSession, stopTokenIds, virtualTokensOf, type ModelSession } from '../session.js';
import { failed, invalid } from './errors.js';

const CACHED_SESSIONS = 2;
/** Open models nobody has used for this long are freed. */
export const IDLE_RELEASE_MS = 5 * 60_000;

export interface GeneratorOptions {
  /** free the open models after this long without a call (default IDLE_RELEASE_MS) */
  idleMs?: number;
}

interface AdapterChoice {
  dir: string | null;
  quantization: QuantizationOptions | null;
  notices: string[];
}

/** The adapter folder to attach for `adapter` (a run folder resolves to its adapter or newest checkpoint). */
export async function resolveAdapter(adapter: string | null): Promise<AdapterChoice> {
  if (adapter === null) return { dir: null, quantization: null, notices: [] };
  if (existsSync(join(adapter, 'adapter_config.json'))) return { dir: adapter, quantization: null, notices: [] };
  const record = await readRunRecord(adapter);
  if (!record) throw failed(`${adapter}: holds no adapter_config.json and no run.json; choose an adapter folder or a run folder`);
  const entry = entryFromRecord(adapter, record);
  if (record.config.method === 'full') throw failed(`${adapter}: is a full fine-tuning run; its folder is a whole model: choose it as the model, with no adapter`);
  if (entry.adapter === null) throw failed(`${adapter}: the run has no adapter yet (no finished run and no checkpoint); wait for a checkpoint or the end of the run`);
  return {
    dir: entry.adapter,
    // a checkpoint folder has no run.json to say the run's base was 4-bit: take it from the run
    quantization: record.config.quantization,
    notices: [`the run has not finished: using its newest checkpoint ${entry.adapter}`],
  };
}

async function filesTime(dir: string | null): Promise<string> {
  if (dir === null) return '';
  const times = await Promise.all(['adapter_config.json', 'adapter_model.safetensors'].map((f) => stat(join(dir, f)).then((s) => s.mtimeMs, () => 0)));
  return times.join(',');
}

export class Generator {
  private readonly sessions: { key: string; session: ModelSession }[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** calls queued or running */
  private pending = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly idleMs: number;

  constructor(options: GeneratorOptions = {}) {
    this.idleMs = options.idleMs ?? IDLE_RELEASE_MS;
  }

  /** How many models are open now. */
  get openSessions(): number {
    return this.sessions.length;
  }

  generate(req: GenerateRequest): Promise<GenerateResponse> {
    if (this.closing) return Promise.reject(failed('PEFT Studio is shutting down, so it cannot generate now; try again once PEFT Studio is running'));
    this.stopIdleTimer();
    this.pending += 1;
    const next = this.queue.then(() => this.run(req)).finally(() => {
      this.pending -= 1;
      if (this.pending === 0) this.startIdleTimer();
    });
    this.queue = next.catch(() => {});
    return next;
  }

  /** Frees the open models once the calls queued before it are done; a later generate opens them again. */
  release(): Promise<void> {
    this.stopIdleTimer();
    const next = this.queue.then(() => {
      for (const { session } of this.sessions.splice(0)) session.dispose();
    });
    this.queue = next.catch(() => {});
    return next;
  }

  /** Refuses new calls, then frees the open models once the call in progress (if any) is done. */
  async close(): Promise<void> {
    this.closing = true;
    await this.release();
  }

  private startIdleTimer(): void {
    this.stopIdleTimer();
    if (this.sessions.length === 0 || this.closing) return;
    this.idleTimer = setTimeout(() => void this.release(), this.idleMs);
    // an idle cache must not keep the process alive
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private async session(model: string, choice: AdapterChoice): Promise<ModelSession> {
    const key = JSON.stringify([model, choice.dir, await filesTime(choice.dir)]);
    const at = this.sessions.findIndex((s) => s.key === key);
    if (at >= 0) {
      const [hit] = this.sessions.splice(at, 1);
      this.sessions.unshift(hit);
      return hit.session;
    }
    const session = await openSession(model, { threads: availableParallelism(), adapter: choice.dir, quantization: choice.quantization });
    this.sessions.unshift({ key, session });
    for (const old of this.sessions.splice(CACHED_SESSIONS)) old.session.dispose();
    return session;
  }

  private async run(req: GenerateRequest): Promise<GenerateResponse> {
    const choice = await resolveAdapter(req.adapter);
    const session = await this.session(req.model, choice);
    const started = performance.now();
    const promptIds = session.tokenizer.encode(req.prompt);
    if (promptIds.length === 0) throw invalid('prompt', 'the prompt is empty after tokenization; type some text');
    // virtual tokens (prompt / prefix tuning) take the first positions of the cache
    const positions = session.folder.spec.maxPositionEmbeddings - virtualTokensOf(session.adapter);
    if (promptIds.length + req.maxNewTokens > positions) {
      throw invalid('maxNewTokens', `the prompt (${promptIds.length} tokens) and ${req.maxNewTokens} new tokens exceed the model's ${positions} positions; shorten the prompt or ask for at most ${Math.max(0, positions - promptIds.length)} tokens`);
    }
    const defaults = (await readGenerationConfig(session.folder.dir)) ?? { temperature: 0, topP: 1 };
    const result = await generate(session.engine, promptIds, {
      maxNewTokens: req.maxNewTokens,
      temperature: req.temperature,
      topP: req.temperature === 0 ? 1 : defaults.topP,
      seed: req.seed,
      stopTokenIds: await stopTokenIds(session.folder, session.tokenizer),
      maxPositions: positions,
    });
    return {
      text: session.tokenizer.decode(result.tokens, { skipSpecialTokens: true }),
      tokens: result.tokens.length,
      stoppedBy: result.stoppedBy,
      seconds: (performance.now() - started) / 1000,
      notices: [...choice.notices, ...session.notices],
    };
  }
}
