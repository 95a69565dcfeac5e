// generation_config.json: the generation settings a model folder ships with.
// Only what generation uses is read: the stop tokens and the sampling
// defaults, with transformers' fallbacks. The file is optional, and an
// unreadable one counts as absent (generation still works from config.json);
// generationConfigProblem says so, for the folder's notices.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

export interface GenerationConfig {
  /** eos_token_id as a list; null when the file does not set it */
  eosTokenIds: number[] | null;
  /** 0 (greedy) unless do_sample is true; then temperature, default 1 */
  temperature: number;
  /** 1 unless do_sample is true; then top_p, default 1 */
  topP: number;
}

/** Reads `dir`/generation_config.json; null when it is missing or not a JSON object. */
export async function readGenerationConfig(dir: string): Promise<GenerationConfig | null> {
  let g: unknown;
  try {
    g = JSON.parse(await readFile(join(dir, GENERATION_CONFIG_FILE), 'utf8'));
  } catch {
    return null;
  }
  if (typeof g !== 'object' || g === null || Array.isArray(g)) return null;
  const { eos_token_id: eos, do_sample: doSample, temperature, top_p: topP } = g as Record<string, unknown>;
  const sampling = doSample === true;
  return {
    eosTokenIds: Number.isInteger(eos) ? [eos as number]
      : Array.isArray(eos) && eos.length > 0 && eos.every((x) => Number.isInteger(x)) ? (eos as number[]) : null,
    temperature: !sampling ? 0 : typeof temperature === 'number' ? temperature : 1,
    topP: !sampling ? 1 : typeof topP === 'number' ? topP : 1,
  };
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
