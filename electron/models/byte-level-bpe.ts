// Byte-level BPE (the GPT-2 / Llama 3 kind of tokenizer): the pieces every
// byte-level tokenizer this project builds shares, the demo's trained one
// (demo/tokenizer-train.ts) and the tiny test ones (testing/tiny-tokenizer.ts).
//   - the GPT-2 pre-tokenizer regex and byte -> visible character table;
//   - merge learning as in the `tokenizers` library's BpeTrainer: spell every
//     pre-token in byte symbols, then repeatedly merge the most frequent
//     adjacent pair (ties broken by the pair's spelling, so the result is
//     deterministic);
//   - tokenizer.json (loaded by @huggingface/tokenizers and the Rust library)
//     and tokenizer_config.json as transformers writes them for a fast
//     tokenizer with BOS added by the post-processor, as Llama's.

/** The pre-tokenizer regex of GPT-2's byte-level BPE (what ByteLevel use_regex applies). */
export const GPT2_PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

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

export interface SpecialTokens {
  bos: string;
  eos: string;
  pad: string;
}

/** A byte-level BPE model: what tokenizer.json and tokenizer_config.json are written from. */
export interface ByteLevelBpe {
  /** token -> id, the special tokens included */
  vocab: Map<string, number>;
  merges: [string, string][];
  special: SpecialTokens;
}

/** One learned merge and how often its pair occurred when it was chosen. */
export interface LearnedMerge {
  a: string;
  b: string;
  count: number;
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

function mostFrequentPair(words: readonly Word[]): LearnedMerge | null {
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

/**
 * The merges BPE training learns from `texts`, in order, until no adjacent
 * pair is left. Lazy: each merge is applied to the words only when the next
 * one is asked for, so the caller decides when to stop (vocabulary full, pair
 * too rare) without paying for merges it never takes.
 */
export function* learnMerges(texts: Iterable<string>): Generator<LearnedMerge, void, undefined> {
  const table = byteSymbols();
  const encoder = new TextEncoder();
  const words: Word[] = [...countPreTokens(texts)].map(([piece, count]) => ({ symbols: Array.from(encoder.encode(piece), (b) => table[b]), count }));
  for (;;) {
    const best = mostFrequentPair(words);
    if (best === null) return;
    yield best;
    applyMerge(words, best.a, best.b);
  }
}

/** tokenizer.json: BOS added by the post-processor (as Llama's), byte-level pre-tokenizer and decoder. */
export function byteLevelTokenizerJson(bpe: ByteLevelBpe): Record<string, unknown> {
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

/** tokenizer_config.json as transformers writes it for a fast tokenizer; chat_template only when given. */
export function byteLevelTokenizerConfigJson(bpe: ByteLevelBpe, modelMaxLength: number, chatTemplate?: string): Record<string, unknown> {
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
    ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }),
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    model_max_length: modelMaxLength,
    pad_token: pad,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}
