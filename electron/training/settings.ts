// THE resolver of a training run's settings: the choices a user made (the
// `train` flags, or the app's run form) -> a complete TrainConfig with every
// default filled in and every cross-field rule checked. The CLI turns its
// flags into TrainSettings and the app's service turns its RunSettings into
// them, so the defaults and the rules live here once.
//
// A field that is undefined was not given (the CLI's "flag absent"); for a
// switch only `true` counts as given (and for completionOnly / doubleQuant,
// whose flags switch them off, only `false`). Errors are SettingsError naming
// the field; their messages name fields through `name`, so the CLI can say
// "--rank" where the app says "rank".
import { urlValueProblem } from '../files/url-path.js';
import { resolve } from 'node:path';
import { PEFT_DEFAULT_TARGETS } from '../adapters/peft-config.js';
import type { AdapterPrefix, AdapterPrompt, PromptInit } from '../adapters/prompt-config.js';
import type { ModelSpec, Precision, QuantizationOptions } from '../engine/native.js';
import { DEVICE_REQUEST_HELP, isDeviceRequest, type DeviceRequest } from '../engine/device.js';
import { isPrecision, PRECISION_REQUEST_HELP } from '../engine/precision.js';
import { DEFAULT_NF4 } from '../session.js';
import { defaultThreads } from '../system/machine.js';
import { comparableFingerprint } from './model-fingerprint.js';
import { missingConfigField } from './stored-config.js';
import { MIN_TEXT_POSITIONS, resolveTargets, TRAIN_DEFAULTS as D, trainsLora, trainsVirtualTokens, type DataFormat, type TrainConfig, type TrainMethod } from './config.js';
import type { SchedulerKind } from './schedule.js';

export const PROMPT_INIT_CHOICES = ['random', 'text', 'sample-vocab'] as const;
export type PromptInitChoice = (typeof PROMPT_INIT_CHOICES)[number];
const PROMPT_INIT_OF: Record<PromptInitChoice, PromptInit> = { random: 'RANDOM', text: 'TEXT', 'sample-vocab': 'SAMPLE_VOCAB' };

export interface TrainSettings {
  model?: string;
  data?: string;
  /** a separate evaluation file (`--eval-data`), instead of an eval split of `data` */
  evalData?: string;
  out?: string;
  method?: TrainMethod;
  dataFormat?: DataFormat;
  /** false: train on every token (`--all-tokens`) */
  completionOnly?: boolean;
  pack?: boolean;
  /** a 4-bit base for prompt / prefix tuning (qlora is always nf4) */
  quant?: 'nf4';
  quantBlocksize?: number;
  /** false: keep the absmax values in fp32 (`--no-double-quant`) */
  doubleQuant?: boolean;
  rank?: number;
  alpha?: number;
  dropout?: number;
  /** module names, or ['all-linear'] */
  targets?: readonly string[];
  rslora?: boolean;
  /** DoRA (PEFT use_dora): a trained magnitude per output row of every adapted linear */
  dora?: boolean;
  loraInit?: 'default' | 'gaussian';
  /** layer indices (strings as typed are checked too) */
  layers?: readonly (number | string)[];
  initAdapter?: string;
  virtualTokens?: number;
  promptInit?: PromptInitChoice;
  promptInitText?: string;
  prefixProjection?: boolean;
  encoderHiddenSize?: number;
  lr?: number;
  optimizer?: 'adamw' | 'sgd';
  weightDecay?: number;
  scheduler?: SchedulerKind;
  warmupSteps?: number;
  /** warmup as a fraction of the run's optimizer steps (Hugging Face warmup_ratio): ceil(ratio x steps); not with warmupSteps */
  warmupRatio?: number;
  steps?: number;
  epochs?: number;
  batchSize?: number;
  gradAccum?: number;
  seqLen?: number;
  clip?: number;
  /** NEFTune (Hugging Face neftune_noise_alpha): noise on the input embeddings while training; 0: off */
  neftuneAlpha?: number;
  seed?: number;
  threads?: number;
  evalSplit?: number;
  evalEvery?: number;
  saveEvery?: number;
  /** keep the adapter of the best evaluation in DIR/best/ */
  keepBest?: boolean;
  /** early-stopping patience in evaluations (absent: off) */
  earlyStop?: number;
  /** the improvement an evaluation must beat the best by (needs earlyStop) */
  earlyStopDelta?: number;
  keepCheckpoints?: number;
  gradientCheckpointing?: boolean;
  ignoreMemoryCheck?: boolean;
  ignoreDiskCheck?: boolean;
  /** 'auto' | 'cpu' | 'cuda' | 'cuda:N' (checked here; which GPUs exist is the run's check) */
  device?: string;
  /** 'auto' | 'fp32' | 'bf16' (checked here; whether the device has bf16 is the run's check) */
  precision?: string;
}

export type SettingField = keyof TrainSettings;

/** A setting that is wrong or does not go with the others. `missing`: a required one was not given. */
export class SettingsError extends Error {
  constructor(readonly field: SettingField, message: string, readonly missing = false) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** Numeric limits of the settings (inclusive min / max, exclusive above / below); `train`'s flags use them too. */
export interface SettingLimit {
  kind: 'int' | 'number';
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}

export const SETTING_LIMITS = {
  rank: { kind: 'int', min: 1 },
  alpha: { kind: 'number', above: 0 },
  dropout: { kind: 'number', min: 0, below: 1 },
  virtualTokens: { kind: 'int', min: 1 },
  encoderHiddenSize: { kind: 'int', min: 1 },
  quantBlocksize: { kind: 'int', min: 32, max: 4096 },
  // the engine's optimizer takes a float32: past its largest value (1e39) the rate cannot be held at all. A rate
  // far above any fine-tuning one (1e30) is a slip the run is told about (warnings.ts), not refused: it is how
  // a divergence is provoked on purpose (the NaN-recovery tests do)
  lr: { kind: 'number', min: 0, max: 3.4028234663852886e38 },
  weightDecay: { kind: 'number', min: 0 },
  warmupSteps: { kind: 'int', min: 0 },
  // a fraction of the run: 1 or more would be the whole run or past it (transformers reads a warmup_steps of 1 or more as steps)
  warmupRatio: { kind: 'number', min: 0, below: 1 },
  steps: { kind: 'int', min: 0 },
  epochs: { kind: 'int', min: 1 },
  batchSize: { kind: 'int', min: 1 },
  gradAccum: { kind: 'int', min: 1 },
  seqLen: { kind: 'int', min: 2 },
  clip: { kind: 'number', min: 0 },
  // the paper tried 5 to 15; far above, the noise drowns the embeddings (and past
  // fp32's range the engine could not hold the value): a bound that catches slips
  neftuneAlpha: { kind: 'number', min: 0, max: 10000 },
  seed: { kind: 'int', min: 0 },
  threads: { kind: 'int', min: 1 },
  evalSplit: { kind: 'number', min: 0, below: 1 },
  evalEvery: { kind: 'int', min: 0 },
  saveEvery: { kind: 'int', min: 0 },
  earlyStop: { kind: 'int', min: 1 },
  earlyStopDelta: { kind: 'number', min: 0 },
  keepCheckpoints: { kind: 'int', min: 0 },
} as const satisfies Partial<Record<SettingField, SettingLimit>>;

export type LimitedField = keyof typeof SETTING_LIMITS;

/**
 * Steps in the app: at least 1. The CLI's `--steps 0` writes the freshly
 * initialised adapter (a tested use); a run of 0 steps started from the form
 * is a slip that would "finish" untrained.
 */
export const APP_STEPS_LIMIT: SettingLimit = { ...SETTING_LIMITS.steps, min: 1 };

/** The bounds of a limited setting, to spread into a flag spec. */
export function limitsOf(field: LimitedField): Omit<SettingLimit, 'kind'> {
  const { kind: _kind, ...bounds } = SETTING_LIMITS[field] as SettingLimit;
  return bounds;
}

/** "an integer >= 1", "a number >= 0 and < 1" */
export function describeLimit(limit: SettingLimit): string {
  const parts: string[] = [];
  if (limit.min !== undefined) parts.push(`>= ${limit.min}`);
  if (limit.above !== undefined) parts.push(`> ${limit.above}`);
  if (limit.max !== undefined) parts.push(`<= ${limit.max}`);
  if (limit.below !== undefined) parts.push(`< ${limit.below}`);
  return `${limit.kind === 'int' ? 'an integer' : 'a number'}${parts.length ? ` ${parts.join(' and ')}` : ''}`;
}

/** null when `value` is within the limit, else what was expected. */
export function limitProblem(value: number, limit: SettingLimit): string | null {
  const bad = !Number.isFinite(value) || (limit.kind === 'int' && !Number.isSafeInteger(value)) ||
    (limit.min !== undefined && value < limit.min) || (limit.max !== undefined && value > limit.max) ||
    (limit.above !== undefined && value <= limit.above) || (limit.below !== undefined && value >= limit.below);
  return bad ? describeLimit(limit) : null;
}

/** How a message names a field (the CLI: its flag). */
export type FieldNamer = (field: SettingField) => string;
const plainName: FieldNamer = (field) => field;

const LORA_ONLY: SettingField[] = ['rank', 'alpha', 'dropout', 'targets', 'rslora', 'dora', 'loraInit', 'layers'];
const PROMPT_ONLY: SettingField[] = ['promptInit', 'promptInitText'];
const PREFIX_ONLY: SettingField[] = ['prefixProjection', 'encoderHiddenSize'];
/** Settings an initAdapter brings with it (its adapter_config.json decides them). */
const FROM_ADAPTER: SettingField[] = ['rank', 'alpha', 'targets', 'rslora', 'dora', 'layers', 'loraInit', 'virtualTokens', ...PROMPT_ONLY, ...PREFIX_ONLY];

/** Whether a setting was given (switches: only the value their flag sets). */
export function isGiven(s: TrainSettings, field: SettingField): boolean {
  const v = s[field];
  if (field === 'completionOnly' || field === 'doubleQuant') return v === false;
  if (typeof v === 'boolean') return v;
  return v !== undefined;
}

export function defaultLr(method: TrainMethod): number {
  switch (method) {
    case 'full': return D.fullLr;
    case 'prompt': return D.promptLr;
    case 'prefix': return D.prefixLr;
    default: return D.loraLr;
  }
}

/**
 * Resolves the settings to a complete run configuration (model-independent checks only).
 * `threadsByDefault`: the threads a run gets when none are given (the machine's, within a
 * container's CPU quota: machine.ts cpuBudget; a parameter so tests can pin it).
 */
export function trainConfigFromSettings(s: TrainSettings, name: FieldNamer = plainName, threadsByDefault: () => number = defaultThreads): TrainConfig {
  const fail = (field: SettingField, message: string): never => {
    throw new SettingsError(field, message);
  };
  const given = (f: SettingField) => isGiven(s, f);
  const refuse = (fields: SettingField[], applies: string) => {
    const misplaced = fields.find(given);
    if (misplaced) fail(misplaced, `${name(misplaced)} applies to ${applies} only`);
  };
  for (const [field, limit] of Object.entries(SETTING_LIMITS) as [LimitedField, SettingLimit][]) {
    const v = s[field];
    if (v === undefined) continue;
    const problem = limitProblem(v, limit);
    if (problem) fail(field, `${name(field)} expects ${problem}, got ${v}`);
  }
  const method = s.method ?? 'lora';
  const m = name('method');
  const virtual = trainsVirtualTokens(method);
  if (!trainsLora(method)) refuse(LORA_ONLY, `${m} lora and qlora`);
  if (method === 'full') refuse(['initAdapter'], `${m} lora, qlora, prompt and prefix`);
  if (!virtual) refuse(['virtualTokens'], `${m} prompt and prefix`);
  if (method !== 'prompt') refuse(PROMPT_ONLY, `${m} prompt`);
  if (method !== 'prefix') refuse(PREFIX_ONLY, `${m} prefix`);
  if (given('quant') && !virtual && method !== 'qlora') {
    fail('quant', `${name('quant')} applies to ${m} prompt and prefix (for LoRA on a 4-bit base use ${m} qlora${method === 'full' ? '; full fine-tuning cannot train 4-bit weights' : ''})`);
  }
  if (method !== 'qlora' && !(virtual && given('quant'))) {
    const misplaced = (['quantBlocksize', 'doubleQuant'] as const).find(given);
    if (misplaced) fail(misplaced, `${name(misplaced)} applies to ${m} qlora only (or to prompt / prefix with ${name('quant')} nf4)`);
  }
  if (method === 'prompt' && given('pack')) {
    fail('pack', `${name('pack')} cannot be used with ${m} prompt: prompt tuning prepends the virtual tokens to each sequence, so every document needs its own row (prefix tuning and LoRA can pack)`);
  }
  if (given('initAdapter')) {
    const clash = FROM_ADAPTER.find(given);
    if (clash) fail(clash, `${name(clash)} cannot be combined with ${name('initAdapter')}: the adapter's adapter_config.json decides it`);
  }
  if (given('steps') && given('epochs')) fail('steps', `give either ${name('steps')} or ${name('epochs')}, not both`);
  if (given('warmupSteps') && given('warmupRatio')) {
    // transformers disagrees with itself here (4.x: the steps win; 5.x: warmup_ratio replaces them), so either would be a guess
    fail('warmupRatio', `give either ${name('warmupSteps')} or ${name('warmupRatio')}, not both (transformers 4 lets the steps win, transformers 5 the fraction: which one was meant cannot be told)`);
  }
  const evalUrl = s.evalData === undefined ? null : urlValueProblem(s.evalData, name('evalData'), 'dataset');
  if (evalUrl !== null) fail('evalData', evalUrl);
  const evalData = s.evalData === undefined || s.evalData === '' ? null : resolve(s.evalData);
  if (evalData !== null && (s.evalSplit ?? 0) > 0) {
    // two sources of eval rows: which one the eval loss was taken on would be a guess
    fail('evalSplit', `${name('evalSplit')} cannot be combined with ${name('evalData')}: the eval rows come from the evaluation file, and all of ${name('data')} is trained on. Drop ${name('evalSplit')}, or drop ${name('evalData')} to hold out a share of ${name('data')}`);
  }
  checkBestAndEarlyStop(s, evalData !== null, name);
  let targets;
  try {
    targets = resolveTargets(s.targets ?? [...PEFT_DEFAULT_TARGETS]);
  } catch (e) {
    fail('targets', (e as Error).message.replaceAll('--targets', name('targets')));
  }
  const required = (field: 'model' | 'data' | 'out'): string => {
    const v = s[field];
    if (v === undefined || v === '') throw new SettingsError(field, `${name(field)} is required`, true);
    const url = field === 'out' ? null : urlValueProblem(v, name(field), field === 'model' ? 'model' : 'dataset');
    if (url !== null) fail(field, url);
    return resolve(v);
  };
  const device = deviceOf(s, name);
  const precision = precisionOf(s, name);
  const model = required('model');
  const data = required('data');
  const out = required('out');
  const quantization = method === 'qlora' || (virtual && given('quant')) ? nf4Of(s, name) : null;
  return {
    model,
    data,
    evalData,
    out,
    method,
    quantization,
    lora: trainsLora(method)
      ? {
        rank: s.rank ?? D.rank,
        alpha: s.alpha ?? D.alpha,
        dropout: s.dropout ?? D.dropout,
        targets: targets!,
        rslora: s.rslora === true,
        dora: s.dora === true,
        init: s.loraInit ?? 'default',
        layers: layersOf(s.layers, name),
      }
      : null,
    prompt: method === 'prompt' ? promptOf(s, name) : null,
    prefix: method === 'prefix' ? prefixOf(s, name) : null,
    initAdapter: s.initAdapter === undefined ? null : resolve(s.initAdapter),
    optimizer: s.optimizer ?? 'adamw',
    lr: s.lr ?? defaultLr(method),
    adamBeta1: D.adamBeta1,
    adamBeta2: D.adamBeta2,
    adamEpsilon: D.adamEpsilon,
    weightDecay: s.weightDecay ?? D.weightDecay,
    scheduler: s.scheduler ?? D.scheduler,
    // a fraction's count is known once the run has counted its steps (warmup.ts withRunWarmup)
    warmupSteps: s.warmupSteps ?? D.warmupSteps,
    warmupRatio: s.warmupRatio ?? D.warmupRatio,
    steps: s.steps ?? null,
    epochs: s.epochs ?? D.epochs,
    batchSize: s.batchSize ?? D.batchSize,
    gradAccum: s.gradAccum ?? D.gradAccum,
    seqLen: s.seqLen ?? D.seqLen,
    clip: s.clip ?? D.clip,
    neftuneAlpha: s.neftuneAlpha ?? D.neftuneAlpha,
    seed: s.seed ?? D.seed,
    threads: s.threads ?? threadsByDefault(),
    evalSplit: s.evalSplit ?? D.evalSplit,
    evalEvery: s.evalEvery ?? D.evalEvery,
    saveEvery: s.saveEvery ?? D.saveEvery,
    keepBest: s.keepBest === true,
    earlyStop: s.earlyStop ?? D.earlyStop,
    earlyStopDelta: s.earlyStopDelta ?? D.earlyStopDelta,
    gradientCheckpointing: s.gradientCheckpointing === true,
    ignoreMemoryCheck: s.ignoreMemoryCheck === true,
    ignoreDiskCheck: s.ignoreDiskCheck === true,
    device,
    precision,
    dataFormat: s.dataFormat ?? D.dataFormat,
    completionOnly: s.completionOnly !== false,
    pack: s.pack === true,
    keepCheckpoints: s.keepCheckpoints ?? D.keepCheckpoints,
  };
}

/**
 * keepBest and earlyStop judge evaluations during the run: they need eval rows
 * (evalData, or an evalSplit above 0) and evalEvery above 0 (with evaluation
 * at the end only, the best is the last adapter and there is nothing to stop).
 */
function checkBestAndEarlyStop(s: TrainSettings, hasEvalFile: boolean, name: FieldNamer): void {
  if (s.earlyStopDelta !== undefined && s.earlyStop === undefined) {
    throw new SettingsError('earlyStopDelta', `${name('earlyStopDelta')} needs ${name('earlyStop')} N (the evaluations without improvement that stop the run)`);
  }
  const asked = (['earlyStop', 'keepBest'] as const).filter((f) => isGiven(s, f));
  for (const field of asked) {
    const what = field === 'earlyStop' ? 'stops when the eval loss stops improving' : 'keeps the adapter of the lowest eval loss';
    if (!hasEvalFile && !((s.evalSplit ?? D.evalSplit) > 0)) {
      throw new SettingsError(field, `${name(field)} ${what}, so it needs an eval set: give ${name('evalData')} FILE, or ${name('evalSplit')} above 0`);
    }
    if ((s.evalEvery ?? D.evalEvery) === 0) {
      throw new SettingsError(field, `${name(field)} ${what} during the run, so it needs ${name('evalEvery')} N above 0 (with evaluation at the end only there is one eval loss)`);
    }
  }
}

/**
 * The sequence length when none was given: the default, shrunk to what the
 * model's positions leave after the virtual tokens (an explicit one is
 * checked against the model instead, by checkSeqLenFits).
 */
export function defaultSeqLenFor(spec: ModelSpec, virtualTokens = 0): number {
  return Math.max(MIN_TEXT_POSITIONS, Math.min(D.seqLen, spec.maxPositionEmbeddings - virtualTokens));
}

function deviceOf(s: Pick<TrainSettings, 'device'>, name: FieldNamer): DeviceRequest {
  if (s.device === undefined) return D.device;
  if (!isDeviceRequest(s.device)) throw new SettingsError('device', `${name('device')}: unknown device '${s.device}'; use ${DEVICE_REQUEST_HELP}`);
  return s.device;
}

function precisionOf(s: Pick<TrainSettings, 'precision'>, name: FieldNamer): Precision {
  if (s.precision === undefined) return D.precision;
  if (!isPrecision(s.precision)) throw new SettingsError('precision', `${name('precision')}: unknown precision '${s.precision}'; use ${PRECISION_REQUEST_HELP}`);
  return s.precision;
}

function nf4Of(s: TrainSettings, name: FieldNamer): QuantizationOptions {
  const bs = s.quantBlocksize ?? DEFAULT_NF4.blocksize;
  if ((bs & (bs - 1)) !== 0) throw new SettingsError('quantBlocksize', `${name('quantBlocksize')} must be a power of two between 32 and 4096 (got ${bs})`);
  return { type: 'nf4', blocksize: bs, doubleQuant: s.doubleQuant !== false };
}

function layersOf(items: TrainSettings['layers'], name: FieldNamer): number[] | null {
  if (items === undefined) return null;
  const layers = items.map((item) => {
    const s = String(item);
    if (!/^\d+$/.test(s)) throw new SettingsError('layers', `${name('layers')} expects non-negative layer indices, got '${s}'`);
    return Number(s);
  });
  return [...new Set(layers)].sort((a, b) => a - b);
}

function promptOf(s: TrainSettings, name: FieldNamer): AdapterPrompt {
  const text = s.promptInitText ?? null;
  const choice = s.promptInit ?? (text !== null ? 'text' : 'random');
  if (choice === 'text' && (text === null || text === '')) {
    throw new SettingsError('promptInitText', `${name('promptInit')} text needs ${name('promptInitText')} with the text to start from`);
  }
  if (choice !== 'text' && text !== null) throw new SettingsError('promptInitText', `${name('promptInitText')} applies to ${name('promptInit')} text, not ${choice}`);
  return { numVirtualTokens: s.virtualTokens ?? D.virtualTokens, init: PROMPT_INIT_OF[choice], initText: text };
}

function prefixOf(s: TrainSettings, name: FieldNamer): AdapterPrefix {
  const projection = s.prefixProjection === true;
  if (s.encoderHiddenSize !== undefined && !projection) {
    throw new SettingsError('encoderHiddenSize', `${name('encoderHiddenSize')} needs ${name('prefixProjection')} (it sizes the projection's MLP)`);
  }
  return { numVirtualTokens: s.virtualTokens ?? D.virtualTokens, projection, encoderHiddenSize: s.encoderHiddenSize ?? null };
}

/**
 * What a resumed run may change: none of it alters what the run computes,
 * except lr (on purpose, e.g. after a NaN stop), device (a run begun on the
 * CPU may continue on a GPU, or the other way round; the arithmetic differs
 * only in rounding) and precision (a bf16 run continuing on the CPU needs
 * fp32). Without device / precision the run keeps the ones run.json recorded.
 * model, data and evalData may point at a new place for the same files: the
 * run checks them (the data files' sha256 against run.json's data_sha256 /
 * eval_data_sha256, the model's fingerprint against config.modelFingerprint)
 * before it trains.
 */
export type ResumeOverrides = Pick<TrainSettings, 'lr' | 'threads' | 'keepCheckpoints' | 'gradientCheckpointing' | 'ignoreMemoryCheck' | 'ignoreDiskCheck' | 'device' | 'precision' | 'model' | 'data' | 'evalData'>;
export const RESUME_OVERRIDES: readonly (keyof ResumeOverrides)[] = ['lr', 'threads', 'keepCheckpoints', 'gradientCheckpointing', 'ignoreMemoryCheck', 'ignoreDiskCheck', 'device', 'precision', 'model', 'data', 'evalData'];

/** The configuration of a resumed run: its run.json's, in `dir` (the folder may have moved), with the few overrides allowed. */
export function resumedConfig(stored: TrainConfig, dir: string, overrides: ResumeOverrides = {}, name: FieldNamer = plainName): TrainConfig {
  const missing = missingConfigField(stored as unknown as Record<string, unknown>);
  if (missing !== null) {
    throw new SettingsError(missing.field as SettingField, `${dir}/run.json: config.${missing.field} is ${missing.found} (expected ${missing.kind}); every run.json peft-studio writes has it, so the file was edited or damaged. ` +
      `Put the run's value back (its first lines of output, or the settings it was started with, say it), or start a new run`);
  }
  // A precision run.json cannot have written (edited by hand, or damaged) is not taken as 'auto'.
  if (!isPrecision(stored.precision)) {
    throw new SettingsError('precision', `${dir}/run.json: config.precision '${String(stored.precision)}' is not a precision (${PRECISION_REQUEST_HELP}); fix the file or resume with ${name('precision')} fp32 or bf16`);
  }
  const model = overrides.model === undefined || overrides.model === '' ? stored.model : resolve(overrides.model);
  if (model !== stored.model && !(stored.modelFingerprint && comparableFingerprint(stored.modelFingerprint))) {
    // nothing to check the new folder against: it could be any model of the same shapes
    throw new SettingsError('model', `${name('model')} ${model}: this run's run.json records no fingerprint of the model it started with, so another folder cannot be checked to hold the same model. ` +
      `Put the model back at ${stored.model} and resume without ${name('model')}`);
  }
  const data = overrides.data === undefined || overrides.data === '' ? stored.data : resolve(overrides.data);
  const storedEval = stored.evalData ?? null;
  const evalData = overrides.evalData === undefined || overrides.evalData === '' ? storedEval : resolve(overrides.evalData);
  if (storedEval === null && evalData !== null) {
    // a resumed run evaluates on what it started with: a new eval file would change its eval losses midway
    throw new SettingsError('evalData', `${name('evalData')} ${evalData}: this run started without an evaluation file, so it cannot be given one on resume; ` +
      `resume without ${name('evalData')}, or start a new run with it`);
  }
  return {
    ...stored,
    model,
    data,
    evalData,
    device: overrides.device === undefined ? stored.device : deviceOf(overrides, name),
    precision: overrides.precision === undefined ? stored.precision : precisionOf(overrides, name),
    out: dir,
    lr: overrides.lr ?? stored.lr,
    threads: overrides.threads ?? stored.threads,
    keepCheckpoints: overrides.keepCheckpoints ?? stored.keepCheckpoints,
    gradientCheckpointing: stored.gradientCheckpointing || overrides.gradientCheckpointing === true,
    ignoreMemoryCheck: stored.ignoreMemoryCheck || overrides.ignoreMemoryCheck === true,
    // a session's choice: the next resume checks the disk again (what it holds has changed)
    ignoreDiskCheck: overrides.ignoreDiskCheck === true,
  };
}
