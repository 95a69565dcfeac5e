// A Hugging Face BPE tokenizer (tokenizer.json, tokenizer_config.json,
// config.json) as the GGUF tokenizer metadata llama.cpp reads. Byte-level BPE
// is laid out the way its converter writes it (convert_hf_to_gguf.py
// _set_vocab_gpt2 with get_vocab_base, and gguf-py's SpecialVocab):
//   tokenizer.ggml.model        "gpt2" (byte-level BPE)
//   tokenizer.ggml.pre          which pre-tokenizer regex llama.cpp applies (see PRE_TOKENIZERS)
//   tokenizer.ggml.tokens       every id below config.json's vocab_size, in id order: the
//                               BPE vocab and the added tokens; ids no token has are
//                               "[PAD{id}]" of type unused
//   tokenizer.ggml.token_type   1 normal, 3 control (special added tokens, or ones that look
//                               special), 4 user-defined (other added tokens), 5 unused
//   tokenizer.ggml.merges       "a b" strings in rank order
//   tokenizer.ggml.{bos,eos,unknown,seperator,padding}_token_id, add_bos_token / add_eos_token
//   tokenizer.chat_template
// SentencePiece-style BPE ("byte_fallback": true, "▁" for spaces: Llama 2,
// TinyLlama, Mistral 7B) is tokenizer model "llama" (llama.cpp's SPM
// tokenizer), with the same tokens, special ids, flags and template, and
// instead of merges (gguf-vocab-spm.ts):
//   tokenizer.ggml.scores       a score per token, derived from the merges
//   tokenizer.ggml.token_type   as above, and 2 unknown (model.unk_token), 6 byte (<0x00>..<0xFF>)
//   tokenizer.ggml.add_space_prefix  from the normalizer (written by ggufTokenizerKvs)
// Byte-level tokenizers whose split regex llama.cpp has no name for, the
// SentencePiece layouts llama.cpp cannot follow (gguf-vocab-spm.ts), and
// settings llama.cpp does not read from a GGUF (see checkLlamaCppReads) are
// refused: llama.cpp would tokenize their text differently from the model's
// training, without a warning.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GPT2_PRETOKENIZE } from '../models/byte-level-bpe.js';
import { ChatTemplateError, readChatTemplates } from '../models/chat-template-source.js';
import { rebuiltPostProcessor, SpecialTokenFlagsError, templateProcessingJson } from '../models/special-token-flags.js';
import { GgufValueType, type GgufKv } from './gguf/format.js';
import { GgufVocabError } from './gguf-vocab-error.js';
import { isBytePiece, refuseNormalizedAddedTokens, spmScores, spmSpacePrefix } from './gguf-vocab-spm.js';

/** gguf-py TokenType. */
export enum GgufTokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export { GgufVocabError };

const SUPPORTED = 'GGUF model export supports byte-level BPE tokenizers as llama.cpp reads them (tokenizer.json with model.type "BPE" and a ByteLevel pre-tokenizer) whose split regex llama.cpp knows: GPT-2 ("gpt-2"), Llama 3 ("llama-bpe") and Qwen2/Qwen3 ("qwen2"), with no normalizer (or NFC), and added tokens without lstrip / rstrip / single_word; and SentencePiece-style BPE tokenizers ("byte_fallback": true, "▁" for spaces: Llama 2, TinyLlama, Mistral 7B)';

/**
 * The pre-tokenizer names llama.cpp knows for byte-level BPE that this export
 * writes, with the regex llama.cpp runs for each (src/llama-vocab.cpp,
 * llama_vocab::impl::load / the regex_exprs of its pre type) and the regex a
 * Hugging Face tokenizer.json of that family holds. llama.cpp's regex engine
 * has no (?i:...) groups, so it spells the contractions out as (?:'[sS]|...);
 * the two regexes split every text alike.
 */
export const PRE_TOKENIZERS: readonly { pre: string; llamaCppRegex: string; hfRegex: string }[] = [
  {
    pre: 'gpt-2',
    // llama.cpp's GPT-2 splitter is hand-written (unicode.cpp) and also covers the
    // final \s+ alternative of the tokenizers library's built-in GPT-2 pattern.
    llamaCppRegex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    hfRegex: GPT2_PRETOKENIZE.source,
  },
  {
    pre: 'llama-bpe',
    llamaCppRegex: "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    hfRegex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  {
    pre: 'qwen2',
    llamaCppRegex: "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    hfRegex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
];

/** llama.cpp's spelling of the case-insensitive contraction group. */
export function spellOutContractions(regex: string): string {
  return regex.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])");
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The pre name for a split regex, or null when llama.cpp has none for it. */
function preForRegex(regex: string): string | null {
  const spelled = spellOutContractions(regex);
  return PRE_TOKENIZERS.find((p) => regex === p.hfRegex || regex === p.llamaCppRegex || spelled === p.llamaCppRegex)?.pre ?? null;
}

/** tokenizer.ggml.pre for a tokenizer.json's pre_tokenizer, or a GgufVocabError naming the field. */
export function ggufPreTokenizer(tokenizer: Json, file: string): string {
  const refuse = (field: string, problem: string) => new GgufVocabError(`${file}: ${field} ${problem}. ${SUPPORTED}`);
  const pt = tokenizer.pre_tokenizer;
  if (!isObject(pt)) throw refuse('"pre_tokenizer"', 'is missing');
  if (pt.type === 'ByteLevel') {
    if (pt.use_regex === false) throw refuse('"pre_tokenizer.use_regex"', 'is false (a ByteLevel pre-tokenizer that does not split the text)');
    if (pt.add_prefix_space === true) throw refuse('"pre_tokenizer.add_prefix_space"', 'is true; llama.cpp does not add a space before the text');
    return 'gpt-2';
  }
  if (pt.type !== 'Sequence') throw refuse('"pre_tokenizer.type"', `is ${JSON.stringify(pt.type)} (${pt.type === 'Metaspace' ? 'a SentencePiece-style tokenizer without "byte_fallback": true in "model", which llama.cpp needs for characters outside the vocabulary' : 'not a byte-level pre-tokenizer'})`);
  const steps = Array.isArray(pt.pretokenizers) ? pt.pretokenizers : [];
  const [split, byteLevel] = steps as unknown[];
  if (steps.length !== 2 || !isObject(split) || split.type !== 'Split' || !isObject(byteLevel) || byteLevel.type !== 'ByteLevel') {
    throw refuse('"pre_tokenizer.pretokenizers"', `is [${steps.map((s) => (isObject(s) ? String(s.type) : typeof s)).join(', ')}], not [Split, ByteLevel]`);
  }
  const pattern = isObject(split.pattern) ? split.pattern.Regex : undefined;
  if (typeof pattern !== 'string') throw refuse('"pre_tokenizer.pretokenizers[0].pattern"', 'holds no "Regex"');
  if (split.behavior !== 'Isolated' || split.invert === true) {
    throw refuse('"pre_tokenizer.pretokenizers[0]"', `splits with behavior ${JSON.stringify(split.behavior)}${split.invert === true ? ' inverted' : ''}; llama.cpp isolates each regex match`);
  }
  if (byteLevel.use_regex !== false) throw refuse('"pre_tokenizer.pretokenizers[1].use_regex"', 'is true: the text would be split twice');
  if (byteLevel.add_prefix_space === true) throw refuse('"pre_tokenizer.pretokenizers[1].add_prefix_space"', 'is true; llama.cpp does not add a space before the text');
  const pre = preForRegex(pattern);
  if (pre === null) throw refuse('"pre_tokenizer.pretokenizers[0].pattern.Regex"', `is ${JSON.stringify(pattern)}, a split regex llama.cpp has no pre-tokenizer name for`);
  return pre;
}

/** The added-token flags of tokenizer.json that llama.cpp cannot be told about. */
const ADDED_TOKEN_FLAGS = ['lstrip', 'rstrip', 'single_word'] as const;

/**
 * Refuses what a GGUF cannot carry to llama.cpp, which would then tokenize
 * the text differently from the Hugging Face tokenizer, silently. Returns the
 * normalizer kept: null, or "NFC", which the converter also accepts (llama.cpp
 * does not normalize; text already in NFC, which is nearly all text, splits alike).
 */
export function checkLlamaCppReads(tokenizer: Json, pre: string, file: string): 'NFC' | null {
  const refuse = (field: string, problem: string) => new GgufVocabError(`${file}: ${field} ${problem}. ${SUPPORTED}`);
  const model = tokenizer.model as Json;
  // llama.cpp sets ignore_merges (a word in the vocabulary is one token, whatever the merges say)
  // from the pre-tokenizer name alone: for "llama-bpe" and never for gpt-2 / qwen2 (llama-vocab.cpp).
  const ignoreMerges = model.ignore_merges === true;
  if ((pre === 'llama-bpe') !== ignoreMerges) {
    throw refuse('"model.ignore_merges"', `is ${JSON.stringify(model.ignore_merges ?? null)} with the ${pre} pre-tokenizer, but llama.cpp ${pre === 'llama-bpe' ? 'always ignores merges' : 'never ignores merges'} for ${pre}: words in the vocabulary would split differently there`);
  }
  const normalizer = tokenizer.normalizer ?? null;
  let kept: 'NFC' | null = null;
  if (normalizer !== null) {
    if (!isObject(normalizer) || normalizer.type !== 'NFC') {
      const what = isObject(normalizer) ? `of type ${JSON.stringify(normalizer.type)}` : JSON.stringify(normalizer);
      throw refuse('"normalizer"', `is ${what}; llama.cpp applies no normalizer to byte-level BPE text, so it would tokenize text differently from the model's own tokenizer`);
    }
    kept = 'NFC';
  }
  refuseAddedTokenFlags(tokenizer, file, SUPPORTED);
  return kept;
}

/** Refuses added tokens with a flag a GGUF cannot carry (llama.cpp would match them differently). */
function refuseAddedTokenFlags(tokenizer: Json, file: string, supported: string): void {
  const added = Array.isArray(tokenizer.added_tokens) ? tokenizer.added_tokens : [];
  for (const t of added) {
    if (!isObject(t)) continue;
    const flag = ADDED_TOKEN_FLAGS.find((f) => t[f] === true);
    if (flag !== undefined) {
      throw new GgufVocabError(`${file}: "added_tokens" entry ${JSON.stringify(t.content)} (id ${JSON.stringify(t.id)}) sets "${flag}": true; a GGUF has no place for that flag and llama.cpp would not ${flag === 'single_word' ? 'match it as a single word only' : `strip the whitespace ${flag === 'lstrip' ? 'before' : 'after'} the token`}. ${supported}`);
    }
  }
}

/** gguf-py's TextModel.does_token_look_special. */
function looksSpecial(token: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(token)
    || (token.startsWith('<|') && token.endsWith('|>'))
    || (token.startsWith('<｜') && token.endsWith('｜>'))
    || (token.startsWith('<unused') && token.endsWith('>'));
}

async function readJson(file: string, required: boolean): Promise<Json | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new GgufVocabError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})${required ? '; GGUF model export needs the model\'s tokenizer.json' : ''}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new GgufVocabError(`${file}: is not valid JSON (${(err as Error).message}); download it again`);
  }
  if (!isObject(value)) throw new GgufVocabError(`${file}: is not a JSON object; download it again`);
  return value;
}

/** One merge as the "a b" string llama.cpp reads (pairs with spaces: the space written as U+0120, like gguf-py). */
function mergeString(m: unknown, i: number, file: string): string {
  if (typeof m === 'string') return m;
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
    return m.map((part: string) => part.replace(/ /g, '\u0120')).join(' ');
  }
  throw new GgufVocabError(`${file}: "model.merges"[${i}] is neither a "a b" string nor a pair of strings; download the tokenizer again`);
}

function tokenContent(entry: unknown): string | null {
  if (typeof entry === 'string') return entry;
  if (isObject(entry) && typeof entry.content === 'string') return entry.content;
  return null;
}

export interface GgufVocab {
  kvs: GgufKv[];
  /** tokenizer.ggml.model: byte-level BPE, or SentencePiece-style BPE (llama.cpp's SPM tokenizer) */
  model: 'gpt2' | 'llama';
  /** tokenizer.ggml.pre ("default" for SentencePiece-style, which llama.cpp does not split) */
  pre: string;
  tokens: string[];
  tokenTypes: GgufTokenType[];
  /** tokenizer.ggml.merges (byte-level BPE; none for SentencePiece-style) */
  merges: string[];
  /** tokenizer.ggml.scores (SentencePiece-style only) */
  scores: number[] | null;
  /** tokenizer.ggml.*_token_id written, by kind */
  specialIds: Partial<Record<'bos' | 'eos' | 'unk' | 'sep' | 'pad', number>>;
  addBos: boolean;
  addEos: boolean;
  chatTemplate: string | null;
  /**
   * tokenizer.ggml.add_space_prefix: for SentencePiece-style, what tokenizer.json's normalizer
   * does; for byte-level BPE tokenizer_config.json's add_prefix_space (the converter writes it
   * for the llama architecture only)
   */
  addSpacePrefix: boolean | null;
  /** tokenizer.json's normalizer: none, or NFC, which llama.cpp does not apply (text not in NFC may tokenize differently there) */
  normalizer: 'NFC' | null;
}

/** GGUF key of each special-token kind (gguf-py Keys.Tokenizer; "seperator" is its spelling). */
const SPECIAL_KEYS = { bos: 'bos_token_id', eos: 'eos_token_id', unk: 'unknown_token_id', sep: 'seperator_token_id', pad: 'padding_token_id' } as const;
type SpecialKind = keyof typeof SPECIAL_KEYS;

/**
 * The tokenizer metadata of a model folder for a GGUF with `vocabSize` token
 * rows (config.json's vocab_size: the embedding's rows, which may exceed the
 * tokenizer's ids).
 */
/** A vocabulary with `template` as its chat template (tokenizer.chat_template), replacing any. */
export function withChatTemplate(vocab: GgufVocab, template: string): GgufVocab {
  const kvs = vocab.kvs.filter((kv) => kv.key !== 'tokenizer.chat_template');
  return { ...vocab, chatTemplate: template, kvs: [...kvs, { key: 'tokenizer.chat_template', type: GgufValueType.STRING, value: template }] };
}

export async function ggufVocab(modelDir: string, vocabSize: number): Promise<GgufVocab> {
  const file = join(modelDir, 'tokenizer.json');
  const tokenizer = (await readJson(file, true))!;
  const config = (await readJson(join(modelDir, 'tokenizer_config.json'), false)) ?? null;
  const modelConfig = (await readJson(join(modelDir, 'config.json'), false)) ?? {};

  const model = tokenizer.model;
  if (!isObject(model)) throw new GgufVocabError(`${file}: has no "model" object. ${SUPPORTED}`);
  if (model.type !== 'BPE') {
    throw new GgufVocabError(`${file}: "model.type" is ${JSON.stringify(model.type)}${model.type === 'Unigram' ? ' (a SentencePiece Unigram tokenizer)' : ''}, not "BPE". ${SUPPORTED}`);
  }
  // byte fallback: SentencePiece-style BPE, "▁" for spaces
  const spm = model.byte_fallback === true;
  let pre = 'default';
  let normalizer: 'NFC' | null = null;
  let spmSpace: boolean | null = null;
  if (spm) {
    spmSpace = spmSpacePrefix(tokenizer, file);
    refuseAddedTokenFlags(tokenizer, file, 'llama.cpp matches added tokens as they are');
    refuseNormalizedAddedTokens(tokenizer, file);
  } else {
    pre = ggufPreTokenizer(tokenizer, file);
    normalizer = checkLlamaCppReads(tokenizer, pre, file);
  }

  // tokens by id: the BPE vocab, then the added tokens (which may reuse or extend its ids)
  const byId = new Map<number, string>();
  if (!isObject(model.vocab)) throw new GgufVocabError(`${file}: "model.vocab" is not an object of token -> id; download the tokenizer again`);
  for (const [token, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new GgufVocabError(`${file}: "model.vocab" gives token ${JSON.stringify(token)} the id ${JSON.stringify(id)}; ids must be non-negative integers`);
    byId.set(id, token);
  }
  const added = new Map<number, { content: string; special: boolean }>();
  const addedTokens = Array.isArray(tokenizer.added_tokens) ? tokenizer.added_tokens : [];
  addedTokens.forEach((t, i) => {
    if (!isObject(t) || typeof t.id !== 'number' || typeof t.content !== 'string') throw new GgufVocabError(`${file}: "added_tokens"[${i}] needs a numeric "id" and a string "content"`);
    added.set(t.id, { content: t.content, special: t.special === true });
    byId.set(t.id, t.content);
  });
  // SentencePiece's unknown piece (type unknown, as its tokenizer.model says)
  const unkId = spm && typeof model.unk_token === 'string' ? (model.vocab as Record<string, number>)[model.unk_token] : undefined;
  // llama.cpp writes a character no piece holds as its UTF-8 bytes' pieces, which must all be there
  if (spm) {
    for (let b = 0; b < 256; b++) {
      const piece = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      if (!Object.hasOwn(model.vocab, piece)) throw new GgufVocabError(`${file}: "model.vocab" has no byte piece ${JSON.stringify(piece)}; llama.cpp writes characters outside the vocabulary as byte pieces <0x00>..<0xFF>, and needs all 256`);
    }
  }
  let maxId = -1;
  for (const id of byId.keys()) maxId = Math.max(maxId, id);
  if (maxId >= vocabSize) {
    throw new GgufVocabError(`${file}: has token id ${maxId}, but config.json's vocab_size is ${vocabSize}: the tokenizer and the model do not belong together`);
  }

  const tokens: string[] = [];
  const tokenTypes: GgufTokenType[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const token = byId.get(id);
    const extra = added.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      tokenTypes.push(GgufTokenType.UNUSED);
    } else if (spm && id === unkId) {
      tokens.push(token);
      tokenTypes.push(GgufTokenType.UNKNOWN);
    } else if (extra) {
      if (extra.special || looksSpecial(extra.content)) {
        tokens.push(extra.content);
        tokenTypes.push(GgufTokenType.CONTROL);
      } else {
        // llama.cpp expects user-defined tokens pre-normalized: SentencePiece's ▁ as a space
        tokens.push(extra.content.replace(/\u2581/g, ' '));
        tokenTypes.push(GgufTokenType.USER_DEFINED);
      }
    } else {
      tokens.push(token);
      tokenTypes.push(spm && isBytePiece(token) ? GgufTokenType.BYTE : GgufTokenType.NORMAL);
    }
  }

  const rawMerges = model.merges;
  if (!Array.isArray(rawMerges) || rawMerges.length === 0) throw new GgufVocabError(`${file}: "model.merges" is missing or empty; a BPE tokenizer needs its merges`);
  let merges: string[] = [];
  let scores: number[] | null = null;
  if (spm) {
    // a piece's score by its id (the merges name model.vocab's pieces); 0 for every token no merge forms
    const byPiece = spmScores(new Map(Object.entries(model.vocab as Record<string, number>)), rawMerges, file);
    scores = new Array<number>(vocabSize).fill(0);
    for (const [piece, score] of byPiece) {
      const id = (model.vocab as Record<string, number>)[piece];
      if (!added.has(id)) scores[id] = score;
    }
  } else {
    merges = rawMerges.map((m, i) => mergeString(m, i, file));
  }

  // Special ids: tokenizer_config.json's *_token matched to an added token, else config.json's *_token_id.
  const specialIds: GgufVocab['specialIds'] = {};
  const set = (kind: SpecialKind, id: unknown) => {
    if (specialIds[kind] !== undefined || typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) return;
    specialIds[kind] = id;
  };
  const contentOf = (kind: SpecialKind) => tokenContent(config?.[`${kind}_token`]);
  for (const kind of Object.keys(SPECIAL_KEYS) as SpecialKind[]) {
    const content = contentOf(kind);
    if (content !== null) set(kind, addedTokens.find((t) => isObject(t) && t.content === content)?.id);
  }
  for (const kind of Object.keys(SPECIAL_KEYS) as SpecialKind[]) set(kind, modelConfig[`${kind}_token_id`]);
  set('unk', unkId);

  // add_bos / add_eos: what the tokenizer does, as training's tokenizer decides it (models/special-token-flags.ts):
  // the flags of a class that rebuilds the post-processor from them (LlamaTokenizerFast and kin, with their
  // defaults), else the post-processor's template (first / last special token). Unlike the converter, an unsaid
  // flag is written as what the Hugging Face tokenizer does, since llama.cpp's own default differs by pre-tokenizer
  // ("llama-bpe" adds BOS), and would tokenize differently.
  let addBos = false;
  let addEos = false;
  let rebuilt;
  try {
    rebuilt = rebuiltPostProcessor(config, modelConfig, join(modelDir, 'tokenizer_config.json'));
  } catch (err) {
    if (err instanceof SpecialTokenFlagsError) throw new GgufVocabError(err.message);
    throw err;
  }
  if (rebuilt) {
    // the tokens it adds must be the tokenizer's (training refuses the tokenizer otherwise)
    const vocab = model.vocab as Record<string, number>;
    const idOf = (token: string): number | null => {
      for (const [id, t] of added) if (t.content === token) return id;
      return Object.hasOwn(vocab, token) ? vocab[token] : null;
    };
    try {
      templateProcessingJson(rebuilt, idOf, file);
    } catch (err) {
      if (err instanceof SpecialTokenFlagsError) throw new GgufVocabError(err.message);
      throw err;
    }
    addBos = rebuilt.bos !== null;
    addEos = rebuilt.eos !== null;
  } else {
    const post = tokenizer.post_processor;
    const processors = isObject(post) ? (Array.isArray(post.processors) ? post.processors : [post]) : [];
    for (const p of processors) {
      if (!isObject(p) || p.type !== 'TemplateProcessing' || !Array.isArray(p.single) || p.single.length < 2) continue;
      const specialAt = (i: number) => {
        const item = (p.single as unknown[])[i];
        return isObject(item) && isObject(item.SpecialToken) && typeof item.SpecialToken.id === 'string' ? item.SpecialToken.id : null;
      };
      const first = specialAt(0);
      const last = specialAt(p.single.length - 1);
      if (first !== null) addBos = first === (config ? contentOf('bos') : first);
      if (last !== null) addEos = last === (config ? contentOf('eos') : last);
    }
  }

  // The chat template training used (models/chat-template-source.ts: chat_template.jinja, else
  // tokenizer_config.json's; a named set's "default"), and the other named ones beside it.
  let templates;
  try {
    templates = await readChatTemplates(modelDir, config);
  } catch (err) {
    if (err instanceof ChatTemplateError) throw new GgufVocabError(err.message);
    throw err;
  }
  const chatTemplate = templates.default;
  // GGUF key names: tokenizer.chat_template.<name>, with what is not a letter or digit as "_" (as gguf-py writes them)
  const namedTemplates = templates.named
    .map((t) => ({ name: t.name.replace(/[^A-Za-z0-9]/g, '_'), template: t.template }))
    .filter((t) => t.name !== '' && t.name !== 'default');

  const kvs: GgufKv[] = [
    { key: 'tokenizer.ggml.model', type: GgufValueType.STRING, value: spm ? 'llama' : 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: GgufValueType.STRING, value: pre },
    { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: tokens },
  ];
  if (scores) kvs.push({ key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: scores });
  kvs.push({ key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: tokenTypes });
  if (!spm) kvs.push({ key: 'tokenizer.ggml.merges', type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: merges });
  for (const kind of Object.keys(SPECIAL_KEYS) as SpecialKind[]) {
    const id = specialIds[kind];
    if (id !== undefined) kvs.push({ key: `tokenizer.ggml.${SPECIAL_KEYS[kind]}`, type: GgufValueType.UINT32, value: id });
  }
  kvs.push({ key: 'tokenizer.ggml.add_bos_token', type: GgufValueType.BOOL, value: addBos });
  kvs.push({ key: 'tokenizer.ggml.add_eos_token', type: GgufValueType.BOOL, value: addEos });
  for (const t of namedTemplates) kvs.push({ key: `tokenizer.chat_template.${t.name}`, type: GgufValueType.STRING, value: t.template });
  if (namedTemplates.length > 0) kvs.push({ key: 'tokenizer.chat_templates', type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: namedTemplates.map((t) => t.name) });
  if (chatTemplate !== null) kvs.push({ key: 'tokenizer.chat_template', type: GgufValueType.STRING, value: chatTemplate });
  // SentencePiece-style: what tokenizer.json does (our tokenizer reads it, not tokenizer_config.json's flag)
  const addSpacePrefix = spm ? spmSpace : typeof config?.add_prefix_space === 'boolean' ? config.add_prefix_space : null;
  return { kvs, model: spm ? 'llama' : 'gpt2', pre, tokens, tokenTypes, merges, scores, specialIds, addBos, addEos, chatTemplate, addSpacePrefix, normalizer };
}
