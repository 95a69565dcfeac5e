// The Try panel: one prompt, generated twice with the same settings and
// seed, by the base model alone and by the trained one (the base with the
// run's adapter, or a full fine-tune's own model folder), so the two answers
// differ only by the training. Each answer shows as it is generated
// (generateProgress events for its requestId); Stop ends the one being
// generated where it is and does not start the other. The sampling fields
// start from the model's own settings (its generation_config.json, else
// transformers' defaults), each saying where its value came from. What the
// user sets (TryInput, try-input.svelte.ts) is kept by the app
// (Studio.tryInput), so it survives leaving the page and choosing another
// run: a field the user changed keeps its value when another model's settings
// arrive, until the fields are reset to the model's. A field left empty is the
// model's own too. Each answer says the settings it was generated with.
import { STOPPED_BEFORE_START, type ApiTransport, type GenerateRequest, type GenerateResponse, type GenerationDefaults, type PromptFormat, type RunHistory, type RunIndexEntry } from '../../../electron/api/contract.js';
import { limitWords, SAMPLING_LABELS, SAMPLING_LIMITS, samplingWords, withinLimit, type SamplingKey } from '../../../electron/inference/sampling-settings.js';
import { TryInput, type PromptLayoutChoice, type SamplingField } from './try-input.svelte.js';

export const MAX_NEW_TOKENS_LIMIT = 2048;
/** The service takes any seed that is a safe integer >= 0 (electron/service/service.ts, generate's seed). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export const PROMPT_LAYOUTS: readonly { value: PromptLayoutChoice; label: string }[] = [
  { value: 'trained', label: 'As the run was trained' },
  { value: 'plain', label: 'Plain text: the model continues it' },
  { value: 'chat', label: "Chat: a user message in the model's chat template" },
  { value: 'alpaca', label: 'Alpaca: an instruction' },
];

/** Why a plain-text prompt takes no system message (the field's error and the answer's). */
export const NO_SYSTEM_IN_PLAIN = 'A system message needs the chat or alpaca layout; plain text is continued as written.';

/** A layout in a few words (the 'trained' option names the one it stands for). */
export const LAYOUT_WORDS: Record<PromptFormat, string> = { plain: 'plain text', chat: 'chat template', alpaca: 'Alpaca instruction' };

/** What 'trained' resolves to for a run: its rows' layout, plain when not known (an adapter folder from elsewhere). */
export function resolvedLayout(choice: PromptLayoutChoice, trained: PromptFormat | null): PromptFormat {
  return choice === 'trained' ? (trained ?? 'plain') : choice;
}

/** The prompt and its settings; the sampling fields absent or empty: the model's own. */
export interface TrySettings extends Partial<Record<SamplingKey, SamplingField>> {
  prompt: string;
  /** the layout in effect ('trained' resolved) */
  layout: PromptFormat;
  system: string;
  maxNewTokens: number;
  seed: number;
}

/** The sampling fields, in the order the page shows them: the field's id (and data-testid), what it does. */
export const SAMPLING_FIELDS: readonly { key: SamplingKey; id: string; help: string }[] = [
  { key: 'temperature', id: 'try-temperature', help: '0: greedy (the most likely token each time)' },
  { key: 'topK', id: 'try-top-k', help: 'when sampling, only the k most likely tokens; 0: off' },
  { key: 'topP', id: 'try-top-p', help: 'when sampling, then the most likely tokens until their probability reaches this; 1: off' },
  { key: 'minP', id: 'try-min-p', help: 'when sampling, then drops the tokens less likely than this times the most likely one; 0: off' },
  { key: 'typicalP', id: 'try-typical-p', help: 'when sampling, then keeps the most typical tokens (the likeliest may not be) until their probability reaches this; 1: off' },
  { key: 'epsilonCutoff', id: 'try-epsilon-cutoff', help: 'when sampling, then drops the tokens less likely than this, but the most likely; 0: off' },
  { key: 'etaCutoff', id: 'try-eta-cutoff', help: 'when sampling, then drops the tokens less likely than a floor of this or less, lower when the choice is wide; 0: off' },
  { key: 'repetitionPenalty', id: 'try-repetition-penalty', help: 'makes every token already in the prompt or answer less likely, greedy or sampled; 1: off' },
  { key: 'noRepeatNgramSize', id: 'try-no-repeat-ngram-size', help: 'no run of this many tokens may occur twice in the prompt and answer, greedy or sampled; 0: off' },
];

/**
 * What the fields start from, and what an empty one means. Where the file
 * holds a value that cannot be used, the service fills in transformers'
 * default (generation-defaults.ts) while `peft-studio generate` stops with
 * the file's error when it would use that value (sampling-settings.ts
 * resolveSampling): the help says both, so it claims no more than is so.
 */
export const MODEL_DEFAULTS_HELP =
  "The fields start from the model's generation_config.json, else transformers' defaults, as peft-studio generate without flags; an emptied field is the model's own. " +
  "A value in the file that cannot be used is replaced here by transformers' default (the note above says so), where peft-studio generate stops until that setting is given as a flag.";

/**
 * Where a sampling field's value came from: the model's file, transformers'
 * default, or the user. 'own': emptied while the file holds values that cannot
 * be used (the problems name their keys, the page cannot tell which): the
 * model's own, whichever it is.
 */
export type FieldOrigin = 'file' | 'default' | 'edited' | 'own';

/** A field's origin in a few words (beside its label). */
export const ORIGIN_WORDS: Record<FieldOrigin, string> = { file: "the model's", default: 'default', edited: 'yours', own: "the model's own" };

/** Where the fields' values came from, in a sentence ("Filled in from the model's generation_config.json (temperature, top-p); …"). */
export function defaultsSourceText(d: Pick<GenerationDefaults, 'file' | 'fromFile' | 'problems'>): string {
  if (d.file === null) return "Filled in with transformers' defaults: the model has no generation_config.json.";
  const named = SAMPLING_FIELDS.filter(({ key }) => d.fromFile.includes(key)).map(({ key }) => SAMPLING_LABELS[key].toLowerCase());
  // a file that is there but broken (or whose values are all refused) is named as such: the problems below say why
  if (named.length === 0 && d.problems.length > 0) return "Filled in with transformers' defaults: the model's generation_config.json cannot be used for them (below).";
  if (named.length === 0) return "Filled in with transformers' defaults: the model's generation_config.json sets none of these.";
  const others = named.length === SAMPLING_FIELDS.length ? '' : "; the others are transformers' defaults";
  return `Filled in from the model's generation_config.json (${named.join(', ')})${others}.`;
}

/** The settings an answer was generated with, in words ("greedy decoding, repetition penalty 1.05"). */
export function samplingText(r: Pick<GenerateResponse, 'sampling'>): string {
  return samplingWords(r.sampling);
}

const isSet = (v: SamplingField): v is number => v !== null && v !== undefined;

/** Two field values are the same setting (an empty field binds null or undefined). */
const sameField = (a: SamplingField, b: SamplingField) => (isSet(a) ? a === b : !isSet(b));

/** Why these settings cannot be sent, field by field (empty: they can). */
export function trySettingsErrors(s: TrySettings): Partial<Record<keyof TrySettings, string>> {
  const errors: Partial<Record<keyof TrySettings, string>> = {};
  if (s.prompt.trim() === '') errors.prompt = 'Write a prompt.';
  if (s.layout === 'plain' && s.system.trim() !== '') errors.system = NO_SYSTEM_IN_PLAIN;
  if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 1 || s.maxNewTokens > MAX_NEW_TOKENS_LIMIT) {
    errors.maxNewTokens = `A whole number from 1 to ${MAX_NEW_TOKENS_LIMIT}.`;
  }
  for (const { key } of SAMPLING_FIELDS) {
    const v = s[key];
    // the service's limits (sampling-settings.ts SAMPLING_LIMITS), in words: "A number >= 0 and <= 1, or empty."
    if (isSet(v) && !withinLimit(v, SAMPLING_LIMITS[key])) errors[key] = `${capitalized(limitWords(SAMPLING_LIMITS[key]))}, or empty for the model's own.`;
  }
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) errors.seed = `A whole number from 0 to ${MAX_SEED}.`;
  return errors;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The sampling settings a request carries: the fields set (an empty one is left out: the model's own). */
export function samplingRequest(s: Pick<TrySettings, SamplingKey>): Partial<Pick<GenerateRequest, SamplingKey>> {
  const given: Partial<Pick<GenerateRequest, SamplingKey>> = {};
  for (const { key } of SAMPLING_FIELDS) {
    const v = s[key];
    if (isSet(v)) given[key] = v;
  }
  return given;
}

/** A generation's time: milliseconds below 0.1 s ("4 ms", "< 1 ms"), else seconds with two decimals. */
export function formatGenerationTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds >= 0.1) return `${seconds.toFixed(2)} s`;
  const ms = Math.round(seconds * 1000);
  return ms < 1 ? '< 1 ms' : `${ms} ms`;
}

/** "1 token in 4 ms (250.0 tokens/s), stopped by end of sequence". */
export function generationStats(r: Pick<GenerateResponse, 'tokens' | 'seconds' | 'stoppedBy'>): string {
  const rate = r.seconds > 0 ? ` (${(r.tokens / r.seconds).toFixed(1)} tokens/s)` : '';
  const tokens = `${r.tokens} ${r.tokens === 1 ? 'token' : 'tokens'}`;
  return `${tokens} in ${formatGenerationTime(r.seconds)}${rate}, ${STOPPED_BY[r.stoppedBy]}`;
}

const STOPPED_BY: Record<GenerateResponse['stoppedBy'], string> = {
  eos: 'stopped by end of sequence',
  length: 'stopped by the length limit',
  stopped: 'stopped (Stop pressed)',
};

/** What the right-hand side says when Stop ended the comparison before it. */
export const NOT_GENERATED_AFTER_STOP = 'Not generated: Stop was pressed.';

/** A requestId no other window or tab will pick: the service sends the answer's text to every connected UI under it. */
function newRequestId(side: 'base' | 'adapter'): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return `try-${side}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Where the answer was computed: "generated on NVIDIA H200 (bf16)", "generated on CPU (fp32)". */
export function computedOnText(r: Pick<GenerateResponse, 'computedOn'>): string {
  return `generated on ${r.computedOn.name} (${r.computedOn.precision})`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What the right-hand answer is generated with. */
export interface TrainedModel {
  /** the model folder: the run's base, or a full fine-tune's own folder (its run folder or a checkpoint) */
  model: string;
  /** the adapter (run folder or adapter folder); null for a full fine-tune */
  adapter: string | null;
  /** the checkpoint used because the run has not finished (null: the finished run) */
  checkpoint: string | null;
  /** the run's best/ was tried (train --keep-best): its step; absent or null: the final adapter or model */
  bestStep?: number | null;
}

/** A run's best/ (train --keep-best): its folder and step. */
export interface BestAdapter {
  dir: string;
  step: number;
}

/** What the trained side is when the run's best/ is chosen: a full fine-tune's best/ is a whole model, any other run's an adapter on the base. */
export function bestModelOf(best: BestAdapter, base: string, full: boolean): TrainedModel {
  return full ? { model: best.dir, adapter: null, checkpoint: null, bestStep: best.step } : { model: base, adapter: best.dir, checkpoint: null, bestStep: best.step };
}

/** The step of a checkpoint folder (`.../checkpoints/step-400` -> 400), or null. */
export function checkpointStep(dir: string): number | null {
  const m = /[\\/]step-(\d+)[\\/]*$/.exec(dir);
  return m ? Number(m[1]) : null;
}

/** "the newest checkpoint, step 400 (the run has not finished)" */
export function checkpointText(dir: string): string {
  const step = checkpointStep(dir);
  return `the newest checkpoint${step === null ? '' : `, step ${step}`} (the run has not finished)`;
}

/**
 * What a run is tried with: a full fine-tune is a whole model (its run folder
 * once finished, else its newest checkpoint) and has no adapter; any other
 * run is its base model with the run folder as the adapter, which the service
 * resolves to the newest checkpoint while the run is not finished.
 * Throws (in the app's words) when the run has saved nothing to try yet.
 */
export function trainedModelOf(runDir: string, entry: RunIndexEntry): TrainedModel {
  const checkpoint = entry.status === 'finished' ? null : entry.adapter;
  if (entry.adapter === null) {
    throw new Error(`The run has saved no ${entry.method === 'full' ? 'model' : 'adapter'} yet: try it once it has written its first checkpoint, or when it finishes.`);
  }
  if (entry.method === 'full') return { model: entry.adapter, adapter: null, checkpoint };
  return { model: entry.model, adapter: runDir, checkpoint };
}

export class TryPanel {
  /** the layout the run's rows were trained in, once read (followRun); null: not known */
  trainedFormat = $state<PromptFormat | null>(null);
  /** whether the run's layout has been read (a run of an older version records none: plain text then) */
  trainedFormatRead = $state(false);
  /** the run followRun reads for: an answer for another run (chosen meanwhile) is dropped */
  private following: string | null = null;
  /** the model's own settings, once read (followModel); null: not read (yet), or could not be */
  defaults = $state.raw<GenerationDefaults | null>(null);
  /** why the model's settings could not be read (its fields stay as they are; empty ones are the model's own) */
  defaultsError = $state<string | null>(null);
  /** sampling fields whose text the browser could not read as a number ("1e", "-"): their value reads empty */
  notNumber = $state<Partial<Record<SamplingKey, boolean>>>({});
  /** which side is being generated now */
  generating = $state<'base' | 'adapter' | null>(null);
  /** try the run's best/ (train --keep-best) instead of its final adapter, when it has one */
  useBest = $state(false);
  /** the text of the side being generated, as it comes (its answer replaces it once done) */
  streamed = $state('');
  /** Stop was pressed for this comparison: the side being generated ends where it is, the other is not started */
  stopPressed = $state(false);
  /** the requestId of the answer being generated */
  private requestId: string | null = null;
  base = $state.raw<GenerateResponse | null>(null);
  adapter = $state.raw<GenerateResponse | null>(null);
  /** what the last right-hand answer was generated with */
  trained = $state.raw<TrainedModel | null>(null);
  error = $state<string | null>(null);

  /** `input`: what the user sets, and what the page binds its fields to (the app's Studio.tryInput, kept across visits; a panel of its own by default) */
  constructor(private readonly api: ApiTransport, readonly input: TryInput = new TryInput()) {}

  get errors(): Partial<Record<keyof TrySettings, string>> {
    const i = this.input;
    const settings: TrySettings = { prompt: i.prompt, layout: this.effectiveLayout, system: i.system, maxNewTokens: i.maxNewTokens, seed: i.seed };
    for (const { key } of SAMPLING_FIELDS) settings[key] = i[key];
    const errors = trySettingsErrors(settings);
    // not "the model's own": the field is not empty, it holds text that is no number
    for (const { key } of SAMPLING_FIELDS) if (this.notNumber[key]) errors[key] = "Not a number: type one, or clear the field for the model's own.";
    return errors;
  }

  /** What the page's field of `key` holds that the browser could not read as a number (its validity.badInput). */
  setNotNumber(key: SamplingKey, bad: boolean): void {
    if ((this.notNumber[key] ?? false) !== bad) this.notNumber = { ...this.notNumber, [key]: bad };
  }

  /**
   * Reads the model's own sampling settings (the page calls it when the model
   * changes) and fills each field the user has not changed with them.
   */
  async followModel(model: string | null): Promise<void> {
    this.input.defaultsFor = model;
    if (model === null) {
      this.defaults = null;
      this.defaultsError = null;
      return;
    }
    let defaults: GenerationDefaults;
    try {
      defaults = await this.api.call('generationDefaults', { model });
    } catch (e) {
      if (this.input.defaultsFor !== model) return;
      this.defaults = null;
      this.defaultsError = messageOf(e);
      return;
    }
    if (this.input.defaultsFor !== model) return;
    for (const { key } of SAMPLING_FIELDS) if (!this.edited(key)) this.fill(key, defaults.sampling[key]);
    this.input.filled = Object.fromEntries(SAMPLING_FIELDS.map(({ key }) => [key, defaults.sampling[key]]));
    this.defaults = defaults;
    this.defaultsError = null;
  }

  /** Whether the user changed field `key` from what the model's settings filled in (before any: from empty). */
  edited(key: SamplingKey): boolean {
    return !sameField(this.input[key], this.input.filled[key]);
  }

  /**
   * Where field `key`'s value came from; null until the model's settings are
   * read. An emptied field is not the user's value but the model's own (the
   * request leaves it out): its file's value where the file gives one, else
   * transformers' default; where the file holds values that cannot be used,
   * which keys they are is not told here ('own': the problems name them).
   */
  origin(key: SamplingKey): FieldOrigin | null {
    const d = this.defaults;
    if (d === null) return null;
    const fromFile = d.fromFile.includes(key);
    // text that is no number reads empty, but the field is not: it holds what the user typed
    if (this.notNumber[key]) return 'edited';
    if (!isSet(this.input[key])) return fromFile ? 'file' : d.problems.length === 0 ? 'default' : 'own';
    if (this.edited(key)) return 'edited';
    return fromFile ? 'file' : 'default';
  }

  /** Whether any sampling field holds the user's value rather than the model's. */
  get anyEdited(): boolean {
    return this.defaults !== null && SAMPLING_FIELDS.some(({ key }) => this.edited(key));
  }

  /** Puts the model's own settings back in every sampling field. */
  resetToModel(): void {
    if (this.defaults === null) return;
    for (const { key } of SAMPLING_FIELDS) this.fill(key, this.defaults.sampling[key]);
  }

  private fill(key: SamplingKey, value: number): void {
    this.input[key] = value;
    this.setNotNumber(key, false);
  }

  /** The layout the next answers get: the chosen one, or the run's for 'trained'. */
  get effectiveLayout(): PromptFormat {
    return resolvedLayout(this.input.layout, this.trainedFormat);
  }

  /** Reads the layout of the run's rows (the page calls it when the run changes); generate reads it again. */
  async followRun(runDir: string | null): Promise<void> {
    this.following = runDir;
    this.trainedFormat = null;
    this.trainedFormatRead = false;
    if (runDir === null) return;
    const format = (await this.runHistory(runDir))?.trainedPromptFormat ?? null;
    if (this.following !== runDir) return;
    this.trainedFormat = format;
    this.trainedFormatRead = true;
  }

  /** The 'trained' option's words: the layout it stands for once known. */
  get trainedLabel(): string {
    const label = PROMPT_LAYOUTS[0].label;
    if (this.trainedFormat) return `${label} (${LAYOUT_WORDS[this.trainedFormat]})`;
    return this.trainedFormatRead ? `${label} (not recorded: plain text)` : label;
  }

  canGenerate(model: string | null, runDir: string | null): boolean {
    return model !== null && runDir !== null && this.generating === null && Object.keys(this.errors).length === 0;
  }

  /**
   * The base model first, then the trained one (one after the other: they
   * share the CPU). The run is read again just before the second answer, so
   * a checkpoint written meanwhile, or the end of the run, is what is used
   * and named. `model`: the run's base model (the wizard's for a folder that
   * is no run: then `runDir` is taken as an adapter folder).
   */
  async generate(model: string | null, runDir: string | null, best: BestAdapter | null = null): Promise<void> {
    if (!model || !runDir || !this.canGenerate(model, runDir)) return;
    const { prompt, system, maxNewTokens, seed } = this.input;
    const sampling = samplingRequest(this.input);
    this.error = null;
    this.base = null;
    this.adapter = null;
    this.trained = null;
    this.stopPressed = false;
    const off = this.api.onEvent((e) => {
      if (e.type === 'generateProgress' && e.requestId === this.requestId) this.streamed += e.text;
    });
    const answer = (side: 'base' | 'adapter', request: Omit<GenerateRequest, 'requestId'>) => {
      this.generating = side;
      this.streamed = '';
      this.requestId = newRequestId(side);
      return this.api.call('generate', { ...request, requestId: this.requestId });
    };
    try {
      this.generating = 'base';
      const history = await this.runHistory(runDir);
      const base = history?.entry.model ?? model;
      // both sides get the same layout: the one the run's rows were trained in, unless another is chosen
      this.trainedFormat = history?.trainedPromptFormat ?? null;
      const promptFormat = this.effectiveLayout;
      if (promptFormat === 'plain' && system.trim() !== '') {
        throw new Error(NO_SYSTEM_IN_PLAIN);
      }
      const settings = { prompt, promptFormat, ...(system.trim() !== '' ? { system } : {}), maxNewTokens, ...sampling, seed };
      // Stop pressed while the run was read: nothing is generated
      if (this.stopPressed) return;
      this.base = await answer('base', { ...settings, model: base, adapter: null });
      if (this.stopPressed) return;
      this.generating = 'adapter';
      const now = (await this.runHistory(runDir))?.entry;
      const trained = this.useBest && best !== null
        ? bestModelOf(best, base, now?.method === 'full')
        : now ? trainedModelOf(runDir, now) : { model: base, adapter: runDir, checkpoint: null };
      this.trained = trained;
      if (this.stopPressed) return;
      this.adapter = await answer('adapter', { ...settings, model: trained.model, adapter: trained.adapter });
    } catch (e) {
      // Stop pressed before any text came (the model still loading): nothing to show, no error
      if (!(this.stopPressed && messageOf(e) === STOPPED_BEFORE_START)) this.error = messageOf(e);
    } finally {
      off();
      this.generating = null;
      this.requestId = null;
      this.streamed = '';
    }
  }

  /** Ends the answer being generated where it is (it is kept and shown as stopped); the other side is not started. */
  async stop(): Promise<void> {
    if (this.generating === null || this.stopPressed) return;
    this.stopPressed = true;
    const requestId = this.requestId;
    if (requestId === null) return;
    try {
      await this.api.call('stopGenerate', { requestId });
    } catch (e) {
      this.error = messageOf(e);
    }
  }

  /** The run's history (its index entry, its rows' layout); null for a folder that is no run (an adapter folder). */
  private async runHistory(runDir: string): Promise<RunHistory | null> {
    try {
      return await this.api.call('runHistory', { runDir });
    } catch {
      return null;
    }
  }
}
