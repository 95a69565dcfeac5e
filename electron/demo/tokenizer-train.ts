// The demo model's byte-level BPE tokenizer (the GPT-2 / Llama 3 kind):
// trained as the `tokenizers` library's BpeTrainer does, with the merge
// learner in models/byte-level-bpe.ts, until the vocabulary is full or no pair
// occurs `minFrequency` times. The output is a tokenizer.json that
// @huggingface/tokenizers and the Rust library load, plus
// tokenizer_config.json with the special tokens and the demo's chat template.

import { byteLevelTokenizerConfigJson, byteLevelTokenizerJson, byteSymbols, learnMerges, type ByteLevelBpe, type SpecialTokens } from '../models/byte-level-bpe.js';

export { byteSymbols, type SpecialTokens } from '../models/byte-level-bpe.js';

export interface BpeTrainOptions {
  /** total ids: special tokens + 256 byte symbols + merges */
  vocabSize: number;
  /** a pair seen fewer times is not merged */
  minFrequency: number;
  special: SpecialTokens;
}

/** vocab: special tokens first, then the 256 byte symbols, then merges in order */
export type TrainedBpe = ByteLevelBpe;

/** Learns merges from `texts`; the vocabulary may end smaller than asked when the text runs out of pairs. */
export function trainByteLevelBpe(texts: Iterable<string>, options: BpeTrainOptions): TrainedBpe {
  const specials = [options.special.bos, options.special.eos, options.special.pad];
  const base = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < base) {
    throw new Error(`a byte-level BPE vocabulary needs at least ${base} ids (${specials.length} special + 256 bytes), got ${options.vocabSize}`);
  }
  const vocab = new Map<string, number>();
  specials.forEach((t) => vocab.set(t, vocab.size));
  byteSymbols().forEach((c) => vocab.set(c, vocab.size));
  const merges: [string, string][] = [];
  for (const { a, b, count } of learnMerges(texts)) {
    if (vocab.size >= options.vocabSize || count < options.minFrequency) break;
    merges.push([a, b]);
    // Two merge paths can spell the same token: it keeps its first id (ids stay contiguous).
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
  }
  return { vocab, merges, special: options.special };
}

/** tokenizer.json: BOS added by the post-processor (as Llama's), byte-level pre-tokenizer and decoder. */
export function tokenizerJson(bpe: TrainedBpe): Record<string, unknown> {
  return byteLevelTokenizerJson(bpe);
}

/**
 * The chat template of the demo model: a user turn becomes the task's
 * "Question: ...\nAnswer:" prompt, an assistant turn its answer and EOS.
 */
export const DEMO_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}Question: {{ message['content'] }}\nAnswer:" +
  "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

/** tokenizer_config.json as transformers writes it for a fast tokenizer, with the demo's chat template. */
export function tokenizerConfigJson(bpe: TrainedBpe, modelMaxLength: number): Record<string, unknown> {
  return byteLevelTokenizerConfigJson(bpe, modelMaxLength, DEMO_CHAT_TEMPLATE);
}
