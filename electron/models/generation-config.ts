// generation_config.json: the generation settings a model folder ships with.
// What generation uses is read, with transformers' fallbacks: the stop
// tokens and the sampling defaults (temperature only with do_sample: true;
// top_k, top_p, min_p, typical_p, epsilon_cutoff, eta_cutoff,
// repetition_penalty and no_repeat_ngram_size as transformers'
// GenerationConfig takes them), and which of them the file
// gives. A value transformers would refuse is kept with why, so the
// generation that would use it names the file and the key. Keys transformers
// applies and we do not are listed, for a notice. The file is optional, and
// an unreadable one counts as absent (generation still works from
// config.json); generationConfigProblem says so, for the folder's notices.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FILE_KEYS, limitWords, SAMPLING_LIMITS, TRANSFORMERS_DEFAULTS, withinLimit, type SamplingDefaults, type SamplingKey } from '../inference/sampling-settings.js';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

export interface GenerationConfig extends SamplingDefaults {
  /** eos_token_id as a list; null when the file does not set it */
  eosTokenIds: number[] | null;
  /** keys transformers' generate() applies that generation here does not, as set ("no_repeat_ngram_size 3") */
  ignored: string[];
}

/**
 * The keys of transformers' GenerationConfig that change which tokens
 * generate() picks (its logits processors and warpers, beam and contrastive
 * search, stop strings), and whether a value is their no-op default.
 */
const UNAPPLIED: Record<string, (v: unknown) => boolean> = {
  min_length: (v) => typeof v === 'number' && v > 0,
  min_new_tokens: (v) => typeof v === 'number' && v > 0,
  bad_words_ids: (v) => v !== null,
  suppress_tokens: (v) => v !== null && !(Array.isArray(v) && v.length === 0),
  begin_suppress_tokens: (v) => v !== null && !(Array.isArray(v) && v.length === 0),
  sequence_bias: (v) => v !== null,
  forced_bos_token_id: (v) => v !== null,
  forced_eos_token_id: (v) => v !== null,
  exponential_decay_length_penalty: (v) => v !== null,
  guidance_scale: (v) => v !== null && v !== 1,
  num_beams: (v) => typeof v === 'number' && v > 1,
  penalty_alpha: (v) => typeof v === 'number' && v > 0,
  stop_strings: (v) => v !== null,
};

/** Reads `dir`/generation_config.json; null when it is missing or not a JSON object. */
export async function readGenerationConfig(dir: string): Promise<GenerationConfig | null> {
  const file = join(dir, GENERATION_CONFIG_FILE);
  let g: unknown;
  try {
    g = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
  if (typeof g !== 'object' || g === null || Array.isArray(g)) return null;
  const o = g as Record<string, unknown>;
  const eos = o.eos_token_id;
  const invalid: Partial<Record<SamplingKey, string>> = {};
  const fromFile: SamplingKey[] = [];
  /** The file's value of a setting: absent is transformers' default, null is "off" (transformers adds no warper for None). */
  const value = (key: SamplingKey, absent: number, off: number): number => {
    const v = o[FILE_KEYS[key]];
    if (v === undefined) return absent;
    if (v !== null && !withinLimit(v, SAMPLING_LIMITS[key])) {
      invalid[key] = `${FILE_KEYS[key]} ${JSON.stringify(v)} must be ${limitWords(SAMPLING_LIMITS[key])}`;
      return absent;
    }
    fromFile.push(key);
    return v === null ? off : v;
  };
  // whether to sample is the file's word when it says do_sample (its temperature then, default 1)
  const temperature = o.do_sample === true ? value('temperature', 1, 1) : 0;
  if (typeof o.do_sample === 'boolean' && !fromFile.includes('temperature') && invalid.temperature === undefined) fromFile.unshift('temperature');
  const unapplied = Object.keys(UNAPPLIED).filter((key) => o[key] !== undefined && UNAPPLIED[key](o[key]));
  return {
    file,
    eosTokenIds: Number.isInteger(eos) ? [eos as number]
      : Array.isArray(eos) && eos.length > 0 && eos.every((x) => Number.isInteger(x)) ? (eos as number[]) : null,
    // transformers samples only with do_sample true (its temperature, default 1); greedy otherwise
    temperature,
    // top-k, top-p, min-p, typical-p and the cutoffs apply whenever generation samples (do_sample, or a temperature given);
    // the penalty and the n-gram ban always
    topK: value('topK', TRANSFORMERS_DEFAULTS.topK, 0),
    topP: value('topP', 1, 1),
    minP: value('minP', 0, 0),
    typicalP: value('typicalP', 1, 1),
    epsilonCutoff: value('epsilonCutoff', 0, 0),
    etaCutoff: value('etaCutoff', 0, 0),
    repetitionPenalty: value('repetitionPenalty', 1, 1),
    noRepeatNgramSize: value('noRepeatNgramSize', 0, 0),
    invalid,
    fromFile,
    ignored: unapplied.map((key) => `${key} ${JSON.stringify(o[key])}`),
  };
}

/** The notice for the keys generation does not apply, naming the file; null when there are none. */
export function ignoredKeysNotice(config: GenerationConfig | null): string | null {
  if (!config || config.ignored.length === 0) return null;
  return `${config.file}: sets ${config.ignored.join(', ')}, which transformers' generate() applies and PEFT Studio does not, so its answers can differ from model.generate()'s`;
}

/**
 * Why `dir`/generation_config.json is ignored (not valid JSON, or not an
 * object), naming the file and what to do; null when it is fine or absent.
 */
export async function generationConfigProblem(dir: string): Promise<string | null> {
  const file = join(dir, GENERATION_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    return `${file}: cannot be read (${code ?? (e as Error).message}), so it is ignored: generation stops at config.json's eos_token_id and decodes greedily. Fix its permissions`;
  }
  const ignored = 'so it is ignored: generation stops at config.json\'s eos_token_id (or the tokenizer\'s EOS) and decodes greedily unless you pass sampling settings. Fix the file (or delete it)';
  let g: unknown;
  try {
    g = JSON.parse(text);
  } catch (e) {
    return `${file}: not valid JSON (${(e as Error).message}), ${ignored}`;
  }
  if (typeof g !== 'object' || g === null || Array.isArray(g)) return `${file}: is not a JSON object (found ${Array.isArray(g) ? 'an array' : g === null ? 'null' : typeof g}), ${ignored}`;
  return null;
}
