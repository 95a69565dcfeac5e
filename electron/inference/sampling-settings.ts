// THE sampling defaults and how a generation's settings are resolved, for
// `peft-studio generate` and the Try page alike: what the user gave, else the
// model's generation_config.json, else transformers' GenerationConfig
// defaults (greedy, no repetition penalty, no n-gram ban; top-k 50, top-p 1,
// no min-p, typical-p, epsilon or eta cutoff once sampling).
// Plain TypeScript (no Node imports): the renderer shows these words too.
import type { SettingLimit } from '../training/settings.js';

export type SamplingKey = 'temperature' | 'topK' | 'topP' | 'minP' | 'typicalP' | 'epsilonCutoff' | 'etaCutoff' | 'repetitionPenalty' | 'noRepeatNgramSize';

/** Everything that decides which tokens a generation picks. */
export interface SamplingSettings {
  /** 0: greedy */
  temperature: number;
  /** 0: off */
  topK: number;
  /** 1: off */
  topP: number;
  /** 0: off */
  minP: number;
  /** 1: off */
  typicalP: number;
  /** 0: off */
  epsilonCutoff: number;
  /** 0: off */
  etaCutoff: number;
  /** 1: off */
  repetitionPenalty: number;
  /** 0: off */
  noRepeatNgramSize: number;
  seed: number;
}

/**
 * What generation_config.json brings (models/generation-config.ts reads and
 * checks it): every setting but the seed; temperature 0 unless do_sample is
 * true (transformers decodes greedily then).
 */
export interface SamplingDefaults extends Omit<SamplingSettings, 'seed'> {
  /** the file, as messages name it */
  file: string;
  /** keys whose value cannot be used, with why ("top_p 1.5 must be a number >= 0 and <= 1") */
  invalid: Partial<Record<SamplingKey, string>>;
  /** the settings whose value is the file's own (temperature: the file says do_sample); the others are transformers' defaults */
  fromFile: SamplingKey[];
}

/** The seed when none is given (the CLI's --seed and the Try page's field start here). */
export const DEFAULT_SEED = 42;

/**
 * transformers' GenerationConfig defaults for a model without
 * generation_config.json: do_sample False, top_k 50, top_p 1.0, min_p None,
 * typical_p 1.0, epsilon_cutoff 0.0, eta_cutoff 0.0, repetition_penalty 1.0,
 * no_repeat_ngram_size 0 (None, and these values, add no processor).
 */
export const TRANSFORMERS_DEFAULTS: Readonly<Record<SamplingKey, number>> = {
  temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0,
};

/** Every setting but the seed, in transformers' order of application. */
export const SAMPLING_KEYS = Object.keys(TRANSFORMERS_DEFAULTS) as SamplingKey[];

/** The settings with each value from `value` (called in SAMPLING_KEYS' order) and `seed`. */
export function samplingOf(value: (key: SamplingKey) => number, seed: number): SamplingSettings {
  const settings = { seed } as SamplingSettings;
  for (const key of SAMPLING_KEYS) settings[key] = value(key);
  return settings;
}

/**
 * The settings that only choose among sampled tokens (transformers adds their
 * warpers only when do_sample; greedy decoding ignores them); the others act
 * in greedy decoding too.
 */
export const SAMPLED_ONLY: readonly SamplingKey[] = ['topK', 'topP', 'minP', 'typicalP', 'epsilonCutoff', 'etaCutoff'];

/** The values each setting takes (transformers' own checks; temperature 0 is our greedy). */
export const SAMPLING_LIMITS = {
  temperature: { kind: 'number', min: 0 },
  topK: { kind: 'int', min: 0 },
  topP: { kind: 'number', min: 0, max: 1 },
  // MinPLogitsWarper: "min_p has to be a float in the [0, 1] interval"
  minP: { kind: 'number', min: 0, max: 1 },
  // TypicalLogitsWarper: "typical_p has to be a float > 0 and < 1"; 1 is GenerationConfig's "no warper"
  typicalP: { kind: 'number', above: 0, max: 1 },
  // EpsilonLogitsWarper / EtaLogitsWarper: "has to be a float > 0 and < 1"; 0 is GenerationConfig's "no warper"
  epsilonCutoff: { kind: 'number', min: 0, below: 1 },
  etaCutoff: { kind: 'number', min: 0, below: 1 },
  repetitionPenalty: { kind: 'number', above: 0 },
  // NoRepeatNGramLogitsProcessor takes a positive int; 0 is GenerationConfig's "no processor"
  noRepeatNgramSize: { kind: 'int', min: 0 },
} as const satisfies Record<SamplingKey, SettingLimit>;

/** generation_config.json's name for each setting. */
export const FILE_KEYS: Readonly<Record<SamplingKey, string>> = {
  temperature: 'temperature', topK: 'top_k', topP: 'top_p', minP: 'min_p', typicalP: 'typical_p', epsilonCutoff: 'epsilon_cutoff', etaCutoff: 'eta_cutoff',
  repetitionPenalty: 'repetition_penalty', noRepeatNgramSize: 'no_repeat_ngram_size',
};

/** The Try page's name for each setting (its fields, and messages that point at them). */
export const SAMPLING_LABELS: Readonly<Record<SamplingKey, string>> = {
  temperature: 'Temperature', topK: 'Top-k', topP: 'Top-p', minP: 'Min-p', typicalP: 'Typical-p', epsilonCutoff: 'Epsilon cutoff', etaCutoff: 'Eta cutoff',
  repetitionPenalty: 'Repetition penalty', noRepeatNgramSize: 'No-repeat n-gram size',
};

/** "a number >= 0 and <= 1" */
export function limitWords(limit: SettingLimit): string {
  const parts: string[] = [];
  if (limit.min !== undefined) parts.push(`>= ${limit.min}`);
  if (limit.above !== undefined) parts.push(`> ${limit.above}`);
  if (limit.max !== undefined) parts.push(`<= ${limit.max}`);
  if (limit.below !== undefined) parts.push(`< ${limit.below}`);
  return `${limit.kind === 'int' ? 'a whole number' : 'a number'}${parts.length ? ` ${parts.join(' and ')}` : ''}`;
}

/** Whether `value` is a number within `limit`. */
export function withinLimit(value: unknown, limit: SettingLimit): value is number {
  return typeof value === 'number' && Number.isFinite(value) && (limit.kind !== 'int' || Number.isSafeInteger(value)) &&
    (limit.min === undefined || value >= limit.min) && (limit.max === undefined || value <= limit.max) &&
    (limit.above === undefined || value > limit.above) && (limit.below === undefined || value < limit.below);
}

/** A generation_config.json value that cannot be used, named by its file and key (the caller's field is `key`). */
export class SamplingDefaultError extends Error {
  constructor(readonly key: SamplingKey, message: string) {
    super(message);
    this.name = 'SamplingDefaultError';
  }
}

/**
 * The settings a generation uses: each one given, else the file's, else
 * transformers' default. A file value that is wrong is an error only when it
 * would be used (top-k, top-p, min-p, typical-p and the cutoffs only when
 * sampling); `override` says how to give the setting instead ("pass --top-p").
 */
export function resolveSampling(defaults: SamplingDefaults | null, given: Partial<SamplingSettings>, override: (key: SamplingKey) => string): SamplingSettings {
  const pick = (key: SamplingKey, used: boolean): number => {
    const value = given[key];
    if (value !== undefined) return value;
    if (defaults === null) return TRANSFORMERS_DEFAULTS[key];
    const bad = defaults.invalid[key];
    if (bad === undefined) return defaults[key];
    if (!used) return TRANSFORMERS_DEFAULTS[key];
    throw new SamplingDefaultError(key, `${defaults.file}: ${bad}; fix the file (or remove ${FILE_KEYS[key]}), or ${override(key)}`);
  };
  const temperature = pick('temperature', true);
  const sampled = temperature > 0;
  const used = (key: SamplingKey) => !SAMPLED_ONLY.includes(key) || sampled;
  return samplingOf((key) => (key === 'temperature' ? temperature : pick(key, used(key))), given.seed ?? DEFAULT_SEED);
}

/**
 * What a model generates with when nothing is given (the Try page's fields
 * start here): the file's values, a value it holds that cannot be used
 * replaced by transformers' default (`defaults.invalid` says which, for the
 * caller to name). `peft-studio generate` without flags uses the same values,
 * but stops with the file's error where it would use one that cannot be used,
 * until that setting is given as a flag.
 */
export function modelSampling(defaults: SamplingDefaults | null): SamplingSettings {
  return samplingOf((key) => (defaults !== null && defaults.invalid[key] === undefined ? defaults[key] : TRANSFORMERS_DEFAULTS[key]), DEFAULT_SEED);
}

/**
 * "greedy decoding", "greedy decoding, repetition penalty 1.05, no repeated 3-grams",
 * "sampling at temperature 0.7, top-k 20, top-p 0.8, min-p 0.05, repetition penalty 1.05, seed 42"
 * (min-p, typical-p, the cutoffs and the n-gram ban are named only when on: transformers leaves them off unless asked).
 */
export function samplingWords(s: SamplingSettings): string {
  const always = [
    ...(s.repetitionPenalty === 1 ? [] : [`repetition penalty ${s.repetitionPenalty}`]),
    ...(s.noRepeatNgramSize === 0 ? [] : [`no repeated ${s.noRepeatNgramSize}-grams`]),
  ];
  if (s.temperature === 0) return ['greedy decoding', ...always].join(', ');
  return [
    `sampling at temperature ${s.temperature}`, s.topK === 0 ? 'no top-k' : `top-k ${s.topK}`, s.topP === 1 ? 'no top-p' : `top-p ${s.topP}`,
    ...(s.minP === 0 ? [] : [`min-p ${s.minP}`]), ...(s.typicalP === 1 ? [] : [`typical-p ${s.typicalP}`]),
    ...(s.epsilonCutoff === 0 ? [] : [`epsilon cutoff ${s.epsilonCutoff}`]), ...(s.etaCutoff === 0 ? [] : [`eta cutoff ${s.etaCutoff}`]),
    ...always, `seed ${s.seed}`,
  ].join(', ');
}
