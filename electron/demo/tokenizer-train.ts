// A byte-level BPE trainer (the GPT-2 / Llama 3 kind of tokenizer) and the
// Hugging Face files it produces. Training, as in the `tokenizers` library's
// BpeTrainer: split the text into pre-tokens with the GPT-2 regex, spell every
// pre-token in byte symbols, then repeatedly merge the most frequent adjacent
// pair (ties broken by the pair's spelling, so the result is deterministic)
// until the vocabulary is full or no pair occurs `minFrequency` times.
// The output is a tokenizer.json that @huggingface/tokenizers and the Rust
// library load, plus tokenizer_config.json with the special tokens and a chat
// template.

/** The pre-tokenizer regex of GPT-2's byte-level BPE (what ByteLevel use_regex applies). */
export const GPT2_PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface SpecialTokens {
  bos: string;
  eos: string;
  pad: string;
}

export interface BpeTrainOptions {
  /** total ids: special tokens + 256 byte symbols + merges */
  vocabSize: number;
  /** a pair seen fewer times is not merged */
  minFrequency: number;
  special: SpecialTokens;
}

export interface TrainedBpe {
  /** token -> id, special tokens first, then the 256 byte symbols, then merges in order */
  vocab: Map<string, number>;
  merges: [string, string][];
  special: SpecialTokens;
}

/**
 * GPT-2's reversible byte -> character table: printable Latin-1 bytes map to
 * themselves, the others to code points from 256 up, so every byte string is
 * a string of visible characters.
 */
export function byteSymbols(): string[] {
  const keepsItself = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keepsItself(b) ? b : 256 + shifted++));
  return out;
}

interface Word {
  symbols: string[];
  count: number;
}

function countPreTokens(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const piece of text.match(GPT2_PRETOKENIZE) ?? []) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  }
  return counts;
}

function mostFrequentPair(words: readonly Word[]): { a: string; b: string; count: number } | null {
  const pairs = new Map<string, number>();
  for (const w of words) {
    for (let i = 0; i + 1 < w.symbols.length; i++) {
      const key = w.symbols[i] + '\u0000' + w.symbols[i + 1];
      pairs.set(key, (pairs.get(key) ?? 0) + w.count);
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
  if (best === null) return null;
  const [a, b] = best.split('\u0000');
  return { a, b, count: bestCount };
}

function applyMerge(words: Word[], a: string, b: string): void {
  for (const w of words) {
    if (w.symbols.length < 2) continue;
    const out: string[] = [];
    for (let i = 0; i < w.symbols.length; i++) {
      if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
        out.push(a + b);
        i++;
      } else {
        out.push(w.symbols[i]);
      }
    }
    w.symbols = out;
  }
}

/** Learns merges from `texts`; the vocabulary may end smaller than asked when the text runs out of pairs. */
export function trainByteLevelBpe(texts: Iterable<string>, options: BpeTrainOptions): TrainedBpe {
  const specials = [options.special.bos, options.special.eos, options.special.pad];
  const base = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < base) {
    throw new Error(`a byte-level BPE vocabulary needs at least ${base} ids (${specials.length} special + 256 bytes), got ${options.vocabSize}`);
  }
  const table = byteSymbols();
  const vocab = new Map<string, number>();
  specials.forEach((t) => vocab.set(t, vocab.size));
  table.forEach((c) => vocab.set(c, vocab.size));
  const encoder = new TextEncoder();
  const words: Word[] = [...countPreTokens(texts)].map(([piece, count]) => ({ symbols: Array.from(encoder.encode(piece), (b) => table[b]), count }));
  const merges: [string, string][] = [];
  while (vocab.size < options.vocabSize) {
    const best = mostFrequentPair(words);
    if (best === null || best.count < options.minFrequency) break;
    merges.push([best.a, best.b]);
    vocab.set(best.a + best.b, vocab.size);
    applyMerge(words, best.a, best.b);
  }
  return { vocab, merges, special: options.special };
}

/** tokenizer.json: BOS added by the post-processor (as Llama's), byte-level pre-tokenizer and decoder. */
export function tokenizerJson(bpe: TrainedBpe): Record<string, unknown> {
  const { bos, eos, pad } = bpe.special;
  const addedTokens = [bos, eos, pad].map((content) => ({
    id: bpe.vocab.get(content)!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const bosId = bpe.vocab.get(bos)!;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
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
      vocab: Object.fromEntries(bpe.vocab),
      merges: bpe.merges,
    },
  };
}

/**
 * The chat template of the demo model: a user turn becomes the task's
 * "Question: ...\nAnswer:" prompt, an assistant turn its answer and EOS.
 */
export const DEMO_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}Question: {{ message['content'] }}\nAnswer:" +
  "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

/** tokenizer_config.json as transformers writes it for a fast tokenizer. */
export function tokenizerConfigJson(bpe: TrainedBpe, modelMaxLength: number): Record<string, unknown> {
  const { bos, eos, pad } = bpe.special;
  const decoder: Record<string, unknown> = {};
  for (const t of [bos, eos, pad]) {
    decoder[String(bpe.vocab.get(t))] = { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    bos_token: bos,
    chat_template: DEMO_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    model_max_length: modelMaxLength,
    pad_token: pad,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}
