// Builds a real byte-level BPE tokenizer (the GPT-2 / Llama 3 kind) for tiny
// test models: 3 special tokens, the 256 byte tokens, then merges learned from
// a short built-in English text until the vocabulary has the requested size.
// The result is a complete tokenizer.json that @huggingface/tokenizers (and
// the Rust `tokenizers` library) load, plus a matching tokenizer_config.json.
// Merge learning and the file layout are models/byte-level-bpe.ts's, shared
// with the demo's trained tokenizer.
import { byteLevelTokenizerConfigJson, byteLevelTokenizerJson, byteSymbols, learnMerges } from '../models/byte-level-bpe.js';

export const TINY_SPECIAL_TOKENS = ['<s>', '</s>', '<pad>'] as const;
export const TINY_BOS_ID = 0;
export const TINY_EOS_ID = 1;
export const TINY_PAD_ID = 2;
/** id of byte b is FIRST_BYTE_ID + b */
export const FIRST_BYTE_ID = TINY_SPECIAL_TOKENS.length;
/** smallest vocabulary a byte-level tokenizer can have */
export const MIN_TINY_VOCAB = FIRST_BYTE_ID + 256;

/** The GPT-2 byte -> printable character table used by byte-level BPE. */
export const bytesToUnicode = byteSymbols;

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

export interface TinyTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** tokenizer.json + tokenizer_config.json with exactly `vocabSize` ids. */
export function buildTinyTokenizer(vocabSize: number, modelMaxLength: number): TinyTokenizerFiles {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_TINY_VOCAB) {
    throw new Error(`a byte-level tokenizer needs a vocabulary of at least ${MIN_TINY_VOCAB} (3 special + 256 byte tokens), got ${vocabSize}`);
  }
  const vocab = new Map<string, number>();
  byteSymbols().forEach((c, b) => vocab.set(c, FIRST_BYTE_ID + b));
  const merges: [string, string][] = [];
  const addMerge = (a: string, b: string) => {
    merges.push([a, b]);
    if (!vocab.has(a + b)) vocab.set(a + b, FIRST_BYTE_ID + vocab.size);
  };
  const target = vocabSize - FIRST_BYTE_ID;
  // The first target - 256 merges the text teaches (fewer if it runs out of pairs).
  let learned = 0;
  for (const { a, b } of learnMerges([TRAINING_TEXT])) {
    if (learned++ >= target - 256 || vocab.size >= target) break;
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

  // Special tokens first: ids 0, 1, 2 (TINY_BOS_ID, TINY_EOS_ID, TINY_PAD_ID).
  const fullVocab = new Map<string, number>(TINY_SPECIAL_TOKENS.map((t, id) => [t, id]));
  for (const [token, id] of vocab) fullVocab.set(token, id);
  const [bos, eos, pad] = TINY_SPECIAL_TOKENS;
  const bpe = { vocab: fullVocab, merges, special: { bos, eos, pad } };
  return { tokenizerJson: byteLevelTokenizerJson(bpe), tokenizerConfig: byteLevelTokenizerConfigJson(bpe, modelMaxLength) };
}
