// The model's tokenizer, loaded from tokenizer.json + tokenizer_config.json
// with @huggingface/tokenizers (a JavaScript port of the Rust `tokenizers`
// library). Special tokens follow the tokenizer's own rules, as transformers'
// AutoTokenizer builds it: tokenizer.json's post-processor decides whether
// BOS/EOS are added, unless the tokenizer class rebuilds it from
// add_bos_token / add_eos_token (special-token-flags.ts). The chat template
// comes from where transformers reads it (chat-template-source.ts).
// A change to the ids this gives for a text needs data/token-cache.ts CACHE_VERSION bumped.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTemplateError, readChatTemplates } from './chat-template-source.js';
import { rebuiltPostProcessor, SpecialTokenFlagsError, templateProcessingJson, type RebuiltPostProcessor } from './special-token-flags.js';

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
  /** apply transformers' clean_up_tokenization; default: as tokenizer_config.json says (cleanUpSpaces) */
  cleanUpSpaces?: boolean;
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
  /** the model's chat template as transformers uses it (chat_template.jinja, else tokenizer_config.json's; the "default" of a named set) */
  readonly chatTemplate: string | null;
  /** where chatTemplate was read (a file path, with " (chat_template)" when inline), for messages; null when there is none */
  readonly chatTemplateSource: string | null;
  /** BOS / EOS as a tokenizer class that rebuilds the post-processor adds them; null: tokenizer.json's post-processor as it is */
  readonly rebuiltPostProcessor: RebuiltPostProcessor | null;
  /** how token pieces spell out text (for token -> text offsets) */
  readonly pieceScheme: PieceScheme;
  /** tokenizer.json has a normalizer (added tokens marked "normalized" are then matched on the normalized text) */
  private readonly hasNormalizer: boolean;
  private byteOfChar: Map<string, number> | null = null;
  private around: { prefix: number[]; suffix: number[] } | null = null;
  // Caches: the library rebuilds its added-token map on every call, and
  // spelling a token out is the same work for every occurrence.
  private addedById: Map<number, AddedTokenInfo> | null = null;
  private specialTexts: string[] | null = null;
  private readonly spelledTokens = new Map<number, Uint8Array | number[] | null>();

  private constructor(
    private readonly tokenizer: Tokenizer,
    /** decode applies transformers' clean_up_tokenization (tokenizer_config.json clean_up_tokenization_spaces) */
    readonly cleanUpSpaces: boolean,
    special: { bos: string | null; eos: string | null; pad: string | null },
    fallbackEosId: number | null,
    chat: { template: string | null; source: string | null },
    readonly dir: string,
    /**
     * sha256 (hex) of the tokenizer.json, tokenizer_config.json and chat_template.jinja bytes this tokenizer was
     * built from (null: no tokenizer_config.json / the template was not read from chat_template.jinja), so what is
     * keyed by them (the token cache) names these very files, not a later copy
     */
    readonly fileSha256: { tokenizer: string; config: string | null; template: string | null },
    shape: { pieceScheme: PieceScheme; hasNormalizer: boolean; rebuilt: RebuiltPostProcessor | null },
  ) {
    this.pieceScheme = shape.pieceScheme;
    this.hasNormalizer = shape.hasNormalizer;
    this.rebuiltPostProcessor = shape.rebuilt;
    this.bosToken = special.bos;
    this.eosToken = special.eos;
    this.padToken = special.pad;
    this.bosId = special.bos === null ? null : tokenizer.token_to_id(special.bos) ?? null;
    this.eosId = special.eos === null ? fallbackEosId : tokenizer.token_to_id(special.eos) ?? fallbackEosId;
    this.padId = special.pad === null ? null : tokenizer.token_to_id(special.pad) ?? null;
    let maxId = -1;
    for (const id of tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.chatTemplate = chat.template;
    this.chatTemplateSource = chat.source;
  }

  /**
   * Loads the tokenizer of a model folder. When tokenizer_config.json has no
   * eos_token, the EOS id falls back to config.json's eos_token_id.
   */
  static async load(dir: string): Promise<ModelTokenizer> {
    const tokenizerFile = (await readJson(join(dir, TOKENIZER_FILE), true))!;
    const configFile = await readJson(join(dir, TOKENIZER_CONFIG_FILE), false);
    const tokenizerJson = tokenizerFile.json;
    const config = configFile?.json ?? {};
    const modelConfig = (await readJson(join(dir, 'config.json'), false))?.json ?? {};
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
    // LlamaTokenizerFast and its kin replace the post-processor by one built from add_bos_token / add_eos_token.
    let rebuilt: RebuiltPostProcessor | null;
    try {
      rebuilt = rebuiltPostProcessor(configFile?.json ?? null, modelConfig, join(dir, TOKENIZER_CONFIG_FILE));
      if (rebuilt) tokenizerJson.post_processor = templateProcessingJson(rebuilt, (token) => tokenIdInJson(tokenizerJson, token), join(dir, TOKENIZER_FILE));
    } catch (err) {
      if (err instanceof SpecialTokenFlagsError) throw new TokenizerError(err.message);
      throw err;
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
    let templates;
    try {
      templates = await readChatTemplates(dir, configFile?.json ?? null);
    } catch (err) {
      if (err instanceof ChatTemplateError) throw new TokenizerError(err.message);
      throw err;
    }
    // transformers' current default for clean_up_tokenization_spaces is false.
    const cleanUp = config.clean_up_tokenization_spaces === true;
    const fileSha256 = { tokenizer: tokenizerFile.sha256, config: configFile?.sha256 ?? null, template: templates.fileSha256 };
    const shape = { pieceScheme: pieceSchemeOf(tokenizerJson), hasNormalizer: tokenizerJson.normalizer !== null && tokenizerJson.normalizer !== undefined, rebuilt };
    return new ModelTokenizer(tokenizer, cleanUp, special, fallbackEos, { template: templates.default, source: templates.source }, dir, fileSha256, shape);
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
      clean_up_tokenization_spaces: options.cleanUpSpaces ?? this.cleanUpSpaces,
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
    return this.addedTokens().get(id)?.special === true;
  }

  /** Added tokens by id (special or not), read once. */
  private addedTokens(): Map<number, AddedTokenInfo> {
    this.addedById ??= new Map([...this.tokenizer.get_added_tokens_decoder()].map(([id, t]) => {
      // The library strips on the raw text unless the token is matched on the normalized one (as the Rust library).
      const onRawText = !(t.normalized && this.hasNormalizer);
      return [id, { content: t.content, special: t.special, lstrip: t.lstrip && onRawText, rstrip: t.rstrip && onRawText }];
    }));
    return this.addedById;
  }

  /** The text of every added special token (e.g. "<|eot_id|>"), longest first. */
  specialTokenTexts(): string[] {
    if (!this.specialTexts) {
      const texts: string[] = [];
      for (const t of this.addedTokens().values()) if (t.special) texts.push(t.content);
      this.specialTexts = texts.sort((a, b) => b.length - a.length);
    }
    return this.specialTexts.slice();
  }

  /**
   * The ids the post-processor puts before and after a text (BOS for Llama 2,
   * nothing for a ByteLevel post-processor): encode(t) = prefix + encode(t,
   * no specials) + suffix. Found once by comparing the two encodings of a probe.
   */
  specialTokensAround(): { prefix: number[]; suffix: number[] } {
    if (this.around) return this.around;
    const probe = 'probe';
    const plain = this.encode(probe, { addSpecialTokens: false });
    const full = this.encode(probe);
    let at = -1;
    for (let i = 0; i + plain.length <= full.length && at < 0; i++) {
      if (plain.every((id, k) => full[i + k] === id)) at = i;
    }
    if (at < 0) throw new TokenizerError(`${this.dir}: the tokenizer's post-processor changes the text's tokens, not only adds special tokens around them; this tokenizer is not supported for training.`);
    this.around = { prefix: full.slice(0, at), suffix: full.slice(at + plain.length) };
    return this.around;
  }

  /**
   * Byte offset (into the UTF-8 of `text`) where each token of `ids` starts,
   * plus one final entry = the byte length of the text; `ids` must be
   * encode(text, { addSpecialTokens: false }). The offsets come from spelling
   * every token out as bytes (byte-level BPE: the GPT-2 byte table;
   * SentencePiece-style: "▁" = space and <0xNN> byte tokens; added tokens:
   * their content) and checking that the spelling is exactly the text, but
   * for the one "▁" a SentencePiece-style tokenizer puts before each piece of
   * text between added tokens (its normalizer's Prepend, Metaspace's
   * prepend_scheme), which is no character of the text, and for the
   * whitespace an added token with rstrip / lstrip swallowed after / before
   * itself (Phi-3's "<|end|>"), which is part of that token's text, as the
   * tokenizers library's offsets count it. Null when the scheme is unknown or
   * the spelling differs (normalizers that rewrite the text), so callers can
   * fall back to another method.
   */
  tokenByteStarts(text: string, ids: readonly number[]): Int32Array | null {
    if (this.pieceScheme === 'unknown') return null;
    const target = utf8.encode(text);
    const added = this.addedTokens();
    // The spelling of every token, and where each text segment (between added tokens) starts in it.
    const spelled: number[] = [];
    const tokenAt = new Int32Array(ids.length + 1); // where each token's spelling starts in `spelled`
    const segmentStarts = new Set<number>();
    let afterAdded = true;
    for (let i = 0; i < ids.length; i++) {
      tokenAt[i] = spelled.length;
      const isAdded = added.has(ids[i]);
      if (!isAdded && afterAdded) segmentStarts.add(spelled.length);
      afterAdded = isAdded;
      let bytes = this.spelledTokens.get(ids[i]);
      if (bytes === undefined) {
        bytes = this.tokenBytes(ids[i], added.get(ids[i])?.content);
        this.spelledTokens.set(ids[i], bytes);
      }
      if (bytes === null) return null;
      for (let k = 0; k < bytes.length; k++) spelled.push(bytes[k]);
    }
    tokenAt[ids.length] = spelled.length;
    // Walk the spelling against the text, token by token. SentencePiece-style
    // tokenizers put a "▁" before each text segment (the legacy normalizer's
    // Prepend after every added token; Metaspace's prepend_scheme at the
    // start): that space is no character of the text. At a segment start, one
    // space more in the spelling than in the text is that one, and is skipped.
    // An added token with lstrip / rstrip took the whitespace before / after it
    // out of the neighbouring text (the library trims that text), so it is the
    // token's: its span starts before it / ends after it.
    const starts = new Int32Array(ids.length + 1);
    let j = 0;
    for (let i = 0; i < ids.length; i++) {
      const strip = added.get(ids[i]);
      starts[i] = j;
      if (strip?.lstrip) j += Math.max(0, whitespaceBytesAt(target, j) - whitespaceBytesAt(utf8.encode(strip.content), 0));
      for (let k = tokenAt[i]; k < tokenAt[i + 1]; k++) {
        if (this.pieceScheme === 'metaspace' && segmentStarts.has(k) && spelled[k] === 0x20 && spacesAt(spelled, k) === spacesAt(target, j) + 1) continue; // the prepended space: no text byte
        if (j >= target.length || spelled[k] !== target[j]) return null;
        j++;
      }
      if (strip?.rstrip) j += whitespaceBytesAt(target, j);
    }
    if (j !== target.length) return null;
    starts[ids.length] = j;
    return starts;
  }

  /** The bytes token `id` stands for, or null when its piece cannot be spelled. */
  private tokenBytes(id: number, addedContent: string | undefined): Uint8Array | number[] | null {
    if (addedContent !== undefined) return utf8.encode(addedContent);
    const piece = this.tokenizer.id_to_token(id);
    if (piece === undefined) return null;
    if (this.pieceScheme === 'byte-level') {
      if (!this.byteOfChar) this.byteOfChar = new Map(gpt2ByteChars().map((c, b) => [c, b]));
      const out: number[] = [];
      for (const c of piece) {
        const b = this.byteOfChar.get(c);
        if (b === undefined) return null;
        out.push(b);
      }
      return out;
    }
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (byte) return [parseInt(byte[1], 16)];
    return utf8.encode(piece.replaceAll('\u2581', ' '));
  }
}

/**
 * How many bytes of whitespace start at byte `at` of UTF-8 `bytes`: the characters JavaScript's \s matches,
 * which are those String.trimStart / trimEnd remove, as the tokenizers library strips them for lstrip / rstrip.
 */
function whitespaceBytesAt(bytes: Uint8Array, at: number): number {
  let n = 0;
  while (at + n < bytes.length) {
    const lead = bytes[at + n];
    const length = lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
    if (!/^\s$/u.test(utf8Decoder.decode(bytes.subarray(at + n, at + n + length)))) break;
    n += length;
  }
  return n;
}

/** How many spaces (0x20) start at `at`. */
function spacesAt(bytes: ArrayLike<number>, at: number): number {
  let n = 0;
  while (at + n < bytes.length && bytes[at + n] === 0x20) n++;
  return n;
}

/** How a tokenizer's token strings map to text. */
export type PieceScheme = 'byte-level' | 'metaspace' | 'unknown';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** An added token as tokenByteStarts needs it; lstrip / rstrip only where the library strips on the raw text. */
interface AddedTokenInfo {
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

/** The GPT-2 byte -> printable character table that byte-level BPE pieces are written in. */
function gpt2ByteChars(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

/** Reads the scheme from tokenizer.json's decoder (the part that turns pieces back into text). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function pieceSchemeOf(tokenizerJson: any): PieceScheme {
  const decoders: { type?: string; pattern?: { String?: string }; content?: string }[] = [];
  const walk = (d: unknown) => {
    if (!d || typeof d !== 'object') return;
    const o = d as { type?: string; decoders?: unknown[] };
    if (o.type === 'Sequence' && Array.isArray(o.decoders)) o.decoders.forEach(walk);
    else decoders.push(o as never);
  };
  walk(tokenizerJson?.decoder);
  if (decoders.some((d) => d.type === 'ByteLevel')) return 'byte-level';
  const metaspace = decoders.some((d) => d.type === 'Metaspace' || (d.type === 'Replace' && d.pattern?.String === '\u2581' && d.content === ' '));
  return metaspace ? 'metaspace' : 'unknown';
}

/** The id tokenizer.json gives `token`: an added token's, else the model vocabulary's (null: none). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function tokenIdInJson(tokenizerJson: any, token: string): number | null {
  const added = Array.isArray(tokenizerJson?.added_tokens) ? tokenizerJson.added_tokens.find((t: { content?: unknown }) => t?.content === token) : undefined;
  if (added && Number.isInteger(added.id)) return added.id as number;
  const vocab = tokenizerJson?.model?.vocab;
  // BPE / WordPiece / WordLevel: token -> id; Unigram: [piece, score] pairs in id order
  if (Array.isArray(vocab)) {
    const at = vocab.findIndex((entry: unknown) => Array.isArray(entry) && entry[0] === token);
    return at >= 0 ? at : null;
  }
  const id = vocab && typeof vocab === 'object' && Object.hasOwn(vocab, token) ? vocab[token] : undefined;
  return Number.isInteger(id) ? id as number : null;
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

/**
 * Parsed JSON object (loosely typed: these files have many optional fields) and the sha256 of the bytes it was
 * parsed from, or null when optional and absent.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function readJson(path: string, required: boolean): Promise<{ json: any; sha256: string } | null> {
  let text: string;
  let sha256: string;
  try {
    const bytes = await readFile(path);
    sha256 = createHash('sha256').update(bytes).digest('hex');
    text = bytes.toString('utf8');
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
  return { json, sha256 };
}
