// The model's tokenizer, loaded from tokenizer.json + tokenizer_config.json
// with @huggingface/tokenizers (a JavaScript port of the Rust `tokenizers`
// library). Special tokens follow the tokenizer's own rules: its
// post-processor decides whether BOS/EOS are added, as in transformers'
// fast tokenizers.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

export interface EncodeOptions {
  /** add the special tokens the post-processor adds (BOS for Llama); default true */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** drop special tokens (BOS, EOS, pad, ...) from the text; default false */
  skipSpecialTokens?: boolean;
}

export class ModelTokenizer {
  /** ids of the special tokens named in tokenizer_config.json (null when not set) */
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  /** number of distinct ids (largest id + 1), added tokens included */
  readonly vocabSize: number;
  /** tokenizer_config.json's chat_template when it has a single one */
  readonly chatTemplate: string | null;

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly cleanUpSpaces: boolean,
    special: { bos: string | null; eos: string | null; pad: string | null },
    fallbackEosId: number | null,
    chatTemplate: string | null,
    readonly dir: string,
  ) {
    this.bosToken = special.bos;
    this.eosToken = special.eos;
    this.padToken = special.pad;
    this.bosId = special.bos === null ? null : tokenizer.token_to_id(special.bos) ?? null;
    this.eosId = special.eos === null ? fallbackEosId : tokenizer.token_to_id(special.eos) ?? fallbackEosId;
    this.padId = special.pad === null ? null : tokenizer.token_to_id(special.pad) ?? null;
    let maxId = -1;
    for (const id of tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.chatTemplate = chatTemplate;
  }

  /**
   * Loads the tokenizer of a model folder. When tokenizer_config.json has no
   * eos_token, the EOS id falls back to config.json's eos_token_id.
   */
  static async load(dir: string): Promise<ModelTokenizer> {
    const tokenizerJson = await readJson(join(dir, TOKENIZER_FILE), true);
    const config = (await readJson(join(dir, TOKENIZER_CONFIG_FILE), false)) ?? {};
    const modelConfig = (await readJson(join(dir, 'config.json'), false)) ?? {};
    const special = {
      bos: tokenContent(config.bos_token, 'bos_token', dir),
      eos: tokenContent(config.eos_token, 'eos_token', dir),
      pad: tokenContent(config.pad_token, 'pad_token', dir),
    };
    // The library expects special tokens as plain strings.
    const libraryConfig: Record<string, unknown> = { ...config, bos_token: special.bos ?? undefined, eos_token: special.eos ?? undefined, pad_token: special.pad ?? undefined };
    for (const key of ['unk_token', 'sep_token', 'cls_token', 'mask_token']) {
      if (key in config) libraryConfig[key] = tokenContent(config[key], key, dir) ?? undefined;
    }
    if (Array.isArray(config.additional_special_tokens)) {
      libraryConfig.additional_special_tokens = config.additional_special_tokens
        .map((t: unknown, i: number) => tokenContent(t, `additional_special_tokens[${i}]`, dir))
        .filter((t: string | null): t is string => t !== null);
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, libraryConfig);
    } catch (err) {
      throw new TokenizerError(`${join(dir, TOKENIZER_FILE)}: cannot be loaded (${(err as Error).message}). The tokenizer uses a feature this app does not support, or the file is damaged: download it again.`);
    }
    const eosFromConfig = modelConfig.eos_token_id;
    const fallbackEos = Number.isInteger(eosFromConfig) ? eosFromConfig as number
      : Array.isArray(eosFromConfig) && Number.isInteger(eosFromConfig[0]) ? eosFromConfig[0] as number : null;
    const chatTemplate = typeof config.chat_template === 'string' ? config.chat_template : null;
    // transformers' current default for clean_up_tokenization_spaces is false.
    const cleanUp = config.clean_up_tokenization_spaces === true;
    return new ModelTokenizer(tokenizer, cleanUp, special, fallbackEos, chatTemplate, dir);
  }

  /** Token ids of `text`, with the tokenizer's special tokens unless told not to. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Token ids for a training example: encode(text) followed by EOS (once). */
  encodeForTraining(text: string): number[] {
    const ids = this.encode(text);
    if (this.eosId === null) {
      throw new TokenizerError(`${this.dir}: the tokenizer has no EOS token (tokenizer_config.json has no eos_token and config.json no eos_token_id), so examples cannot be terminated. Add "eos_token" to tokenizer_config.json.`);
    }
    if (ids[ids.length - 1] !== this.eosId) ids.push(this.eosId);
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(Array.from(ids), {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }

  /** Whether `id` is a special token (BOS, EOS, pad, or any added special token). */
  isSpecial(id: number): boolean {
    return this.tokenizer.get_added_tokens_decoder().get(id)?.special === true;
  }
}

/** A special token as tokenizer_config.json writes it: a string or an AddedToken object. */
function tokenContent(value: unknown, field: string, dir: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  throw new TokenizerError(`${join(dir, TOKENIZER_CONFIG_FILE)}: field "${field}" must be a string or an object with "content" (found ${JSON.stringify(value)}). Download tokenizer_config.json again.`);
}

/** Parsed JSON object (loosely typed: these files have many optional fields), or null when optional and absent. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function readJson(path: string, required: boolean): Promise<any> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TokenizerError(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}). The model folder needs tokenizer.json (and tokenizer_config.json): download them with the model.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${path}: is not valid JSON (${(err as Error).message}). Download it again.`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new TokenizerError(`${path}: is not a JSON object. Download it again.`);
  }
  return json;
}
