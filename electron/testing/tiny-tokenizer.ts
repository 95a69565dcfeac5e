// Builds a real byte-level BPE tokenizer (the GPT-2 / Llama 3 kind) for tiny
// test models: 3 special tokens, the 256 byte tokens, then merges learned from
// a short built-in English text until the vocabulary has the requested size.
// The result is a complete tokenizer.json that @huggingface/tokenizers (and
// the Rust `tokenizers` library) load, plus a matching tokenizer_config.json.

export const TINY_SPECIAL_TOKENS = ['<s>', '</s>', '<pad>'] as const;
export const TINY_BOS_ID = 0;
export const TINY_EOS_ID = 1;
export const TINY_PAD_ID = 2;
/** id of byte b is FIRST_BYTE_ID + b */
export const FIRST_BYTE_ID = TINY_SPECIAL_TOKENS.length;
/** smallest vocabulary a byte-level tokenizer can have */
export const MIN_TINY_VOCAB = FIRST_BYTE_ID + 256;

/** The GPT-2 byte -> printable character table used by byte-level BPE. */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

// Written for these tests; any English text with repeated words would do.
const TRAINING_TEXT = `
The model reads the text one token at a time and learns to predict the next token.
Training a small adapter is much cheaper than training the whole model, and the
adapter can be saved, shared and loaded again on top of the same base model.
When the loss goes down on the training data but up on the held-out data, the
model has started to memorise; stop early, lower the learning rate, or add data.
A tokenizer turns text into numbers: here every byte has a token, and frequent
pairs of tokens are merged into longer ones, so common words take fewer tokens.
The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } ! ? .
Hello world! Hello again, world. This is a test of the tiny tokenizer, the tiny
model and the tiny adapter that the tests write before they run.
`;

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Learns `count` merges (fewer if the text runs out of pairs; the caller fills up). */
function learnMerges(count: number, byteChars: string[]): [string, string][] {
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const w of TRAINING_TEXT.match(PRETOKENIZE) ?? []) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const words = [...wordCounts].map(([w, n]) => ({ symbols: Array.from(encoder.encode(w), (b) => byteChars[b]), n }));
  const merges: [string, string][] = [];
  while (merges.length < count) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestCount = 0;
    for (const [key, n] of pairs) {
      if (n > bestCount || (n === bestCount && best !== null && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else {
          out.push(word.symbols[i]);
        }
      }
      word.symbols = out;
    }
  }
  return merges;
}

export interface TinyTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** tokenizer.json + tokenizer_config.json with exactly `vocabSize` ids. */
export function buildTinyTokenizer(vocabSize: number, modelMaxLength: number): TinyTokenizerFiles {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_TINY_VOCAB) {
    throw new Error(`a byte-level tokenizer needs a vocabulary of at least ${MIN_TINY_VOCAB} (3 special + 256 byte tokens), got ${vocabSize}`);
  }
  const byteChars = bytesToUnicode();
  const vocab = new Map<string, number>();
  byteChars.forEach((c, b) => vocab.set(c, FIRST_BYTE_ID + b));
  const merges: [string, string][] = [];
  const addMerge = (a: string, b: string) => {
    merges.push([a, b]);
    if (!vocab.has(a + b)) vocab.set(a + b, FIRST_BYTE_ID + vocab.size);
  };
  const target = vocabSize - FIRST_BYTE_ID;
  for (const [a, b] of learnMerges(target - 256, byteChars)) {
    if (vocab.size >= target) break;
    addMerge(a, b);
  }
  // Fill up with merges the text never produced: existing token + letter.
  const letters = 'etaoinshrdlucmfwypvbgkjqxz'.split('');
  const bases = [...letters];
  for (let i = 0; vocab.size < target; i++) {
    for (const c of letters) {
      if (vocab.size >= target) break;
      if (vocab.has(bases[i] + c)) continue;
      addMerge(bases[i], c);
      bases.push(bases[i] + c);
    }
  }

  const addedTokens = TINY_SPECIAL_TOKENS.map((content, id) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const fullVocab: Record<string, number> = {};
  TINY_SPECIAL_TOKENS.forEach((t, id) => (fullVocab[t] = id));
  for (const [token, id] of vocab) fullVocab[token] = id;

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [TINY_BOS_ID], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: fullVocab,
      merges,
    },
  };
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const t of addedTokens) {
    addedTokensDecoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: '<s>',
    clean_up_tokenization_spaces: false,
    eos_token: '</s>',
    model_max_length: modelMaxLength,
    pad_token: '<pad>',
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig };
}
