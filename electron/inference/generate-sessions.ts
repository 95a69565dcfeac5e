// The try page's generation, as the generation child runs it: continue a
// prompt with the base model, or with an adapter (an adapter folder, or a run
// folder: its final adapter, else its newest checkpoint). Opened models are
// kept for the next call (the last two, keyed by model, adapter, the
// adapter's files' times and where they compute, so the "base" and "adapter"
// panes of the try page both stay warm). Each open model holds its own copy
// of the base weights; the parent frees them all by ending the child.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiError, type GenerateResponse } from '../api/contract.js';
import type { QuantizationOptions } from '../engine/native.js';
import { ignoredKeysNotice, readGenerationConfig } from '../models/generation-config.js';
import { entryFromRecord } from '../runs/run-index.js';
import { readRunRecord } from '../runs/run-record.js';
import { openSession, stopTokenIds, virtualTokensOf, type ModelSession } from '../session.js';
import { generate } from './generate.js';
import { trainedPromptFormat } from './trained-prompt-format.js';
import { positionLimitProblem } from './position-limit.js';
import { modelSampling, resolveSampling, SAMPLED_ONLY, SAMPLING_LABELS, SamplingDefaultError, type SamplingKey, type SamplingSettings } from './sampling-settings.js';
import { layOutPrompt, PromptFormatError, type LaidOutPrompt } from './prompt-format.js';
import { explainNonFiniteOutput, NonFiniteOutputError } from './non-finite-output.js';
import type { GenerateJob, WorkerState } from './generate-protocol.js';
import { answerDecoder, TextStream } from './text-stream.js';

/** What a generation reports as it goes, and asks between tokens. */
export interface GenerationHooks {
  /** the text the newest tokens settled, and the tokens generated so far */
  onText?: (text: string, tokens: number) => void;
  /** true: end the answer at the next token */
  shouldStop?: () => boolean;
}

const CACHED_SESSIONS = 2;

const failed = (message: string) => new ApiError({ code: 'failed', message });
const invalid = (field: string, message: string) => new ApiError({ code: 'invalid', field, message });

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

/** The open models of one child. Calls must not overlap (the worker runs them one at a time). */
export class GenerateSessions {
  private readonly sessions: { key: string; session: ModelSession }[] = [];
  private openedCount = 0;

  get state(): WorkerState {
    return { openSessions: this.sessions.length, opened: this.openedCount };
  }

  /** Frees every open model. */
  disposeAll(): void {
    for (const { session } of this.sessions.splice(0)) session.dispose();
  }

  private async session(job: GenerateJob, choice: AdapterChoice): Promise<ModelSession> {
    const key = JSON.stringify([job.model, choice.dir, await filesTime(choice.dir), job.device, job.precision, job.threads]);
    const at = this.sessions.findIndex((s) => s.key === key);
    if (at >= 0) {
      const [hit] = this.sessions.splice(at, 1);
      this.sessions.unshift(hit);
      return hit.session;
    }
    // free the least recently used one first: the new model must not need room for three
    for (const old of this.sessions.splice(CACHED_SESSIONS - 1)) old.session.dispose();
    const session = await openSession(job.model, { threads: job.threads, adapter: choice.dir, quantization: choice.quantization, device: job.device, precision: job.precision, purpose: 'generate' });
    this.openedCount += 1;
    this.sessions.unshift({ key, session });
    return session;
  }

  async generate(job: GenerateJob, hooks: GenerationHooks = {}): Promise<GenerateResponse> {
    const choice = await resolveAdapter(job.adapter);
    const session = await this.session(job, choice);
    const started = performance.now();
    let prompt: LaidOutPrompt;
    try {
      // an adapter trained on turns with their reasoning writes its own (its run says so)
      const reasoning = choice.dir !== null && job.promptFormat === 'chat' && (await trainedPromptFormat(choice.dir))?.reasoning === true;
      prompt = layOutPrompt(session.tokenizer, job.promptFormat, job.prompt, job.system, reasoning);
    } catch (e) {
      if (e instanceof PromptFormatError) throw invalid(e.field, e.message);
      throw e;
    }
    const promptIds = prompt.ids;
    if (promptIds.length === 0) throw invalid('prompt', 'the prompt is empty after tokenization; type some text');
    // virtual tokens (prompt / prefix tuning) take the first positions of the cache
    const positions = session.folder.spec.maxPositionEmbeddings - virtualTokensOf(session.adapter);
    const limit = positionLimitProblem(promptIds.length, job.maxNewTokens, positions, null);
    if (limit) throw invalid(limit.field, limit.message);
    const fileConfig = await readGenerationConfig(session.folder.dir);
    let sampling: SamplingSettings;
    try {
      // the job's sampling fields and seed are the settings given
      sampling = resolveSampling(fileConfig, job, (key) => `give ${SAMPLING_LABELS[key]} in the Try page's sampling settings`);
    } catch (e) {
      if (e instanceof SamplingDefaultError) throw invalid(e.key, e.message);
      throw e;
    }
    const { onText } = hooks;
    const stream = new TextStream(answerDecoder(session.tokenizer));
    const result = await generate(session.engine, promptIds, {
      vocabSize: session.folder.spec.vocabSize,
      maxNewTokens: job.maxNewTokens,
      ...sampling,
      stopTokenIds: [...(await stopTokenIds(session.folder, session.tokenizer)), ...prompt.stopTokenIds],
      maxPositions: positions,
      shouldStop: hooks.shouldStop,
    }, onText && ((id) => {
      const text = stream.push(id);
      if (text !== '') onText(text, stream.tokens);
    })).catch(async (e: unknown) => {
      if (!(e instanceof NonFiniteOutputError)) throw e;
      throw failed(await explainNonFiniteOutput(session.engine, e.what, { model: session.folder.dir, adapter: choice.dir ?? null }));
    });
    return {
      text: session.tokenizer.decode(result.tokens, { skipSpecialTokens: true }),
      tokens: result.tokens.length,
      stoppedBy: result.stoppedBy,
      seconds: (performance.now() - started) / 1000,
      notices: [...choice.notices, ...session.notices, ...[ignoredKeysNotice(fileConfig), greedyIgnores(job, sampling, modelSampling(fileConfig))].filter((n) => n !== null)],
      computedOn: {
        device: session.device.device,
        name: session.device.gpu?.name ?? 'CPU',
        precision: session.precision.precision,
      },
      prompt: { text: prompt.text, tokens: promptIds.length, layout: prompt.layout },
      sampling,
    };
  }
}

/**
 * The top-k, top-p, min-p, typical-p or cutoffs given for an answer decoded greedily, other than
 * the model's own: they choose among sampled tokens only, so say they did
 * nothing (null: none such, or sampled). The Try page sends the values its
 * fields start from (the model's own) with every answer: those are not news.
 */
function greedyIgnores(job: Partial<Pick<GenerateJob, SamplingKey>>, sampling: Pick<SamplingSettings, 'temperature'>, own: SamplingSettings): string | null {
  if (sampling.temperature !== 0) return null;
  const given = SAMPLED_ONLY.filter((key) => job[key] !== undefined && job[key] !== null && job[key] !== own[key]).map((key) => SAMPLING_LABELS[key].toLowerCase());
  if (given.length === 0) return null;
  const names = given.length === 1 ? given[0] : `${given.slice(0, -1).join(', ')} and ${given[given.length - 1]}`;
  const one = given.length === 1;
  return `the answer was decoded greedily (temperature 0), so the ${names} given ${one ? 'was' : 'were'} not used: ${one ? 'it applies' : 'they apply'} when sampling`;
}
