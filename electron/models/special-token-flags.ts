// Whether a tokenizer puts BOS / EOS around a text, as transformers' AutoTokenizer
// builds it. Most fast tokenizers use tokenizer.json's post-processor as it is, but
// the classes below rebuild it when they are created, from tokenizer_config.json's
// add_bos_token / add_eos_token and their own defaults (LlamaTokenizerFast.__init__ ->
// update_post_processor; GemmaTokenizerFast, CodeLlamaTokenizerFast and
// CohereTokenizerFast copy it), whatever tokenizer.json says.
// The class is tokenizer_config.json's tokenizer_class, else config.json's
// tokenizer_class, else the one transformers maps config.json's model_type to
// (TOKENIZER_MAPPING_NAMES), as AutoTokenizer.from_pretrained picks it.
// Training (models/tokenizer.ts) and the GGUF export (export/gguf-vocab.ts) both
// decide here, so the GGUF's add_bos_token / add_eos_token are what training did.

/** The classes that rebuild the post-processor from the flags, with their default BOS / EOS tokens. */
const REBUILDING_CLASSES: Readonly<Record<string, { bos: string; eos: string }>> = {
  LlamaTokenizer: { bos: '<s>', eos: '</s>' },
  CodeLlamaTokenizer: { bos: '<s>', eos: '</s>' },
  GemmaTokenizer: { bos: '<bos>', eos: '<eos>' },
  CohereTokenizer: { bos: '<BOS_TOKEN>', eos: '<|END_OF_TURN_TOKEN|>' },
};

/** config.json model_type -> tokenizer class, for the model types this app trains whose class rebuilds it. */
const CLASS_OF_MODEL_TYPE: Readonly<Record<string, string>> = {
  llama: 'LlamaTokenizer',
  mistral: 'LlamaTokenizer',
};

/** BOS / EOS as one of those classes adds them; the token strings are those the class uses. */
export interface RebuiltPostProcessor {
  /** the tokenizer class, without "Fast" */
  tokenizerClass: string;
  /** where the class was read, in words */
  classFrom: string;
  /** BOS token string when BOS is added, else null */
  bos: string | null;
  /** EOS token string when EOS is added, else null */
  eos: string | null;
}

type Json = Record<string, unknown>;

/** tokenizer_config.json's flags or tokens cannot say how BOS / EOS are added; the message names the field. */
export class SpecialTokenFlagsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpecialTokenFlagsError';
  }
}

/** A special token as tokenizer_config.json writes it (a string or an AddedToken object); undefined when unsaid. */
function tokenText(value: unknown): string | null | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return null;
}

/**
 * How the tokenizer of these files adds BOS / EOS when its class rebuilds the post-processor, or null
 * when tokenizer.json's post-processor stands as it is. A flag that is not a boolean is refused, naming it.
 */
export function rebuiltPostProcessor(tokenizerConfig: Json | null, modelConfig: Json | null, configFile: string): RebuiltPostProcessor | null {
  const found = tokenizerClassOf(tokenizerConfig, modelConfig);
  if (!found) return null;
  const defaults = REBUILDING_CLASSES[found.name.replace(/Fast$/, '')];
  if (!defaults) return null;
  const flag = (key: 'add_bos_token' | 'add_eos_token', fallback: boolean): boolean => {
    const v = tokenizerConfig?.[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new SpecialTokenFlagsError(`${configFile}: "${key}" must be true or false (found ${JSON.stringify(v)}). Fix or remove it.`);
    return v;
  };
  const addBos = flag('add_bos_token', true);
  const addEos = flag('add_eos_token', false);
  // an unsaid token is the class's default; one set to null is none (transformers then refuses to add it)
  const token = (key: 'bos_token' | 'eos_token', fallback: string, adds: boolean): string | null => {
    if (!adds) return null;
    const t = tokenText(tokenizerConfig?.[key]);
    if (t === undefined) return fallback;
    if (t === null) {
      const why = tokenizerConfig?.[`add_${key}`] === true ? `"add_${key}" is true` : `${found.name} adds it unless "add_${key}" is false`;
      throw new SpecialTokenFlagsError(`${configFile}: "${key}" is ${JSON.stringify(tokenizerConfig?.[key])}, but ${why}. Set "${key}" to the token, or "add_${key}": false.`);
    }
    return t;
  };
  return {
    tokenizerClass: found.name.replace(/Fast$/, ''),
    classFrom: found.from,
    bos: token('bos_token', defaults.bos, addBos),
    eos: token('eos_token', defaults.eos, addEos),
  };
}

/** The tokenizer class AutoTokenizer would build, and where that was read; null when none is named. */
function tokenizerClassOf(tokenizerConfig: Json | null, modelConfig: Json | null): { name: string; from: string } | null {
  const named = tokenizerConfig?.tokenizer_class;
  if (typeof named === 'string') return { name: named, from: 'tokenizer_config.json "tokenizer_class"' };
  const inModel = modelConfig?.tokenizer_class;
  if (typeof inModel === 'string') return { name: inModel, from: 'config.json "tokenizer_class"' };
  const modelType = modelConfig?.model_type;
  if (typeof modelType === 'string' && CLASS_OF_MODEL_TYPE[modelType]) {
    return { name: CLASS_OF_MODEL_TYPE[modelType], from: `config.json "model_type" ${JSON.stringify(modelType)} (no "tokenizer_class")` };
  }
  return null;
}

/**
 * tokenizer.json's post_processor as update_post_processor writes it: a TemplateProcessing of
 * [BOS] $A [EOS] (and [BOS] $A [EOS] [BOS] $B [EOS] for pairs), with the ids of the tokens.
 */
export function templateProcessingJson(rebuilt: RebuiltPostProcessor, idOf: (token: string) => number | null, file: string): Json {
  const special = (token: string, typeId: number) => ({ SpecialToken: { id: token, type_id: typeId } });
  const sequence = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const around = (id: 'A' | 'B', typeId: number) => [
    ...(rebuilt.bos !== null ? [special(rebuilt.bos, typeId)] : []),
    sequence(id, typeId),
    ...(rebuilt.eos !== null ? [special(rebuilt.eos, typeId)] : []),
  ];
  const specialTokens: Json = {};
  for (const token of [rebuilt.bos, rebuilt.eos]) {
    if (token === null) continue;
    const id = idOf(token);
    if (id === null) {
      throw new SpecialTokenFlagsError(`${file}: has no token ${JSON.stringify(token)}, which ${rebuilt.tokenizerClass} (from ${rebuilt.classFrom}) adds around every text as ${token === rebuilt.bos ? 'BOS' : 'EOS'}. Set tokenizer_config.json's "${token === rebuilt.bos ? 'bos_token' : 'eos_token'}" to a token of tokenizer.json, or its "add_${token === rebuilt.bos ? 'bos' : 'eos'}_token" to false.`);
    }
    specialTokens[token] = { id: token, ids: [id], tokens: [token] };
  }
  return { type: 'TemplateProcessing', single: around('A', 0), pair: [...around('A', 0), ...around('B', 1)], special_tokens: specialTokens };
}
