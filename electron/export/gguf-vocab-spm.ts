// A SentencePiece-style BPE tokenizer.json (model "BPE" with byte_fallback,
// "▁" for spaces: Llama 2, TinyLlama, Mistral 7B, Zephyr) as llama.cpp's SPM
// tokenizer reads it from a GGUF (tokenizer.ggml.model "llama"):
//
// - Scores instead of merges. llama.cpp (llm_tokenizer_spm in
//   src/llama-vocab.cpp) starts from the text's characters and keeps joining
//   the adjacent pair whose concatenation is a vocabulary piece, the piece of
//   the highest score first (the leftmost pair among equal scores). A
//   tokenizer.json holds merges (ranks) instead: transformers built them from
//   the SentencePiece scores, every split of a piece into two pieces, the
//   pieces in score order. So a piece's score here is minus the rank of its
//   first merge: the order of the merges is the order of the scores. That only
//   holds when every piece's merges are consecutive and every split llama.cpp
//   could join is a merge; a tokenizer.json where it does not hold (one trained
//   as BPE rather than converted from SentencePiece, say) would tokenize
//   differently there, and is refused naming the piece (spmScores).
//   Pieces no merge forms (single characters, byte pieces, special and added
//   tokens, padding rows) can never be a pair's concatenation in llama.cpp
//   (spmScores refuses the vocabularies where one could), so their score is
//   never read while tokenizing; they get 0, as SentencePiece gives its
//   control and byte pieces (the merged pieces score 0, -1, -2, ...).
// - The space prefix. llama.cpp's add_space_prefix puts a space before the
//   text and after every special token, and then writes every space as "▁"
//   (llama_vocab::impl::tokenize): exactly what tokenizer.json's legacy
//   normalizer [Prepend "▁", Replace " " -> "▁"] does to each piece of text
//   between added tokens. Without the Prepend it is add_space_prefix false.
//   The newer layout (no normalizer, a Metaspace pre-tokenizer) is the same
//   with prepend_scheme "never" (add_space_prefix false); with "always" it
//   prepends "▁" only to text that does not already start with one, and with
//   "first" also only at the start of the input: llama.cpp has no setting for
//   either, and they are refused (see spmSpacePrefix).
// - Added tokens. llama.cpp matches them in the raw text, as the tokenizer does
//   those with "normalized": false; it would split the text around the others
//   differently, and they are refused (refuseNormalizedAddedTokens).
import { GgufVocabError } from './gguf-vocab-error.js';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const SPM_SUPPORTED = 'GGUF model export supports SentencePiece-style tokenizers (model.type "BPE" with "byte_fallback": true) as llama.cpp reads them: the normalizer [Prepend "▁", Replace " " with "▁"] or [Replace " " with "▁"] and no pre-tokenizer (the layout of Llama 2, TinyLlama and Mistral 7B), or no normalizer and a Metaspace pre-tokenizer with prepend_scheme "never" and split false, merges as transformers converts them from SentencePiece, and the 256 byte pieces <0x00>..<0xFF>';

const SPACE = '\u2581';

/** A SentencePiece byte-fallback piece, as llama.cpp looks it up ("<0x0A>": upper-case hex). */
export function isBytePiece(token: string): boolean {
  return /^<0x[0-9A-F]{2}>$/.test(token);
}

function isStep(step: unknown, type: string): step is Json {
  return isObject(step) && step.type === type;
}

/** Prepend "▁" */
const isPrepend = (s: unknown) => isStep(s, 'Prepend') && s.prepend === SPACE;
/** Replace " " -> "▁" */
const isSpaceToMeta = (s: unknown) => isStep(s, 'Replace') && isObject(s.pattern) && s.pattern.String === ' ' && s.content === SPACE;

/**
 * tokenizer.ggml.add_space_prefix for a SentencePiece-style tokenizer.json,
 * or a GgufVocabError naming the field llama.cpp cannot follow.
 */
export function spmSpacePrefix(tokenizer: Json, file: string): boolean {
  const refuse = (field: string, problem: string) => new GgufVocabError(`${file}: ${field} ${problem}. ${SPM_SUPPORTED}`);
  const pre = tokenizer.pre_tokenizer ?? null;
  const normalizer = tokenizer.normalizer ?? null;
  if (pre !== null) {
    if (!isStep(pre, 'Metaspace')) {
      throw refuse('"pre_tokenizer"', `is of type ${JSON.stringify(isObject(pre) ? pre.type : pre)}; llama.cpp's SentencePiece tokenizer does not split the text before merging`);
    }
    if (normalizer !== null) throw refuse('"normalizer"', `is of type ${JSON.stringify(isObject(normalizer) ? normalizer.type : normalizer)} beside a Metaspace pre-tokenizer; llama.cpp applies no normalizer`);
    if (pre.replacement !== SPACE) throw refuse('"pre_tokenizer.replacement"', `is ${JSON.stringify(pre.replacement)}; llama.cpp writes spaces as "▁"`);
    if (pre.split !== false) throw refuse('"pre_tokenizer.split"', `is ${JSON.stringify(pre.split ?? null)}: the text is cut into words at each "▁" before merging ("▁▁hi" as "▁" and "▁hi"); llama.cpp merges across them`);
    // tokenizers before 0.14 said add_prefix_space instead of prepend_scheme
    const scheme = pre.prepend_scheme ?? (pre.add_prefix_space === false ? 'never' : 'always');
    if (scheme === 'never') return false;
    // Metaspace prepends "▁" only to text that does not start with a space already (" hi" -> "▁hi"),
    // and with "first" only at the start of the input, never after a special token; llama.cpp's
    // add_space_prefix prepends a space at the start and after every special token, whatever
    // follows (" hi" -> "▁▁hi"), and without it never: both differ, on text every chat prompt has
    const metaspace = scheme === 'first'
      ? 'adds "▁" only at the start of the input, and only when the input does not start with a space already'
      : 'adds "▁" before the text between special tokens only when it does not start with a space already';
    const always = scheme === 'first'
      ? 'before every text, at the start and after every special token, whatever follows (add_space_prefix true: " hi" is "▁▁hi" there, "▁hi" here; "</s>hi" is "</s>▁hi" there, "</s>hi" here)'
      : 'before every text whatever it starts with (add_space_prefix true: " hi" is "▁▁hi" there, "▁hi" here)';
    throw refuse('"pre_tokenizer.prepend_scheme"', `is ${JSON.stringify(scheme)} (Metaspace, as tokenizers saved with legacy=False have), which ${metaspace}; llama.cpp adds a space either ${always} or nowhere ("hi" is "hi" there, "▁hi" here), and no GGUF setting says otherwise. Export --format merged for a runtime that reads tokenizer.json`);
  }
  const steps: unknown[] = isStep(normalizer, 'Sequence') && Array.isArray(normalizer.normalizers) ? normalizer.normalizers : [normalizer];
  const names = steps.map((s) => (isObject(s) ? String(s.type) : JSON.stringify(s))).join(', ');
  if (steps.length === 2 && isPrepend(steps[0]) && isSpaceToMeta(steps[1])) return true;
  if (steps.length === 1 && isSpaceToMeta(steps[0])) return false;
  throw refuse('"normalizer"', `is [${names}]; llama.cpp only writes spaces as "▁" (Replace " " with "▁"), with or without one before the text (Prepend "▁", add_space_prefix), and applies no other normalizer`);
}

/**
 * Refuses added tokens matched in the normalized text ("normalized": true):
 * the tokenizer looks for them after spaces became "▁" and the prefix was
 * added, so they split the text elsewhere than llama.cpp, which matches added
 * tokens in the raw text ("a<think>b" is not even split there).
 */
export function refuseNormalizedAddedTokens(tokenizer: Json, file: string): void {
  const added = Array.isArray(tokenizer.added_tokens) ? tokenizer.added_tokens : [];
  for (const t of added) {
    if (isObject(t) && t.normalized === true) {
      throw new GgufVocabError(`${file}: "added_tokens" entry ${JSON.stringify(t.content)} (id ${JSON.stringify(t.id)}) sets "normalized": true: the tokenizer matches it in the text after spaces become "▁", llama.cpp in the text as it is, and the two split text around it differently. Add the token with normalized=False`);
    }
  }
}

/** One merge as its two pieces (an "a b" string, or a pair). */
function mergePair(m: unknown, i: number, file: string): [string, string] {
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
  // SentencePiece pieces hold "▁", never a space: the one space separates the two
  if (typeof m === 'string' && m.indexOf(' ') > 0 && m.indexOf(' ') === m.lastIndexOf(' ') && !m.endsWith(' ')) {
    const at = m.indexOf(' ');
    return [m.slice(0, at), m.slice(at + 1)];
  }
  throw new GgufVocabError(`${file}: "model.merges"[${i}] is ${JSON.stringify(m)}, not two pieces ("a b" or ["a", "b"]); download the tokenizer again`);
}

/**
 * The score of every piece of `vocab` (token -> id) for llama.cpp's SPM
 * tokenizer, derived from the merges (see the top of this file), as a map of
 * the pieces some merge forms: every other piece scores 0. Refuses merges
 * llama.cpp cannot follow, naming the piece.
 */
export function spmScores(vocab: ReadonlyMap<string, number>, rawMerges: readonly unknown[], file: string): Map<string, number> {
  const refuse = (problem: string) => new GgufVocabError(`${file}: "model.merges" ${problem}; llama.cpp's SentencePiece tokenizer joins pieces by score, not by merge rank, and would tokenize such text differently. ${SPM_SUPPORTED}`);
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const count = new Map<string, number>();
  const pairs = new Set<string>();
  rawMerges.forEach((m, rank) => {
    const [a, b] = mergePair(m, rank, file);
    const piece = a + b;
    if (!vocab.has(a) || !vocab.has(b) || !vocab.has(piece)) {
      throw new GgufVocabError(`${file}: "model.merges"[${rank}] joins ${JSON.stringify(a)} and ${JSON.stringify(b)}, but ${JSON.stringify(vocab.has(a) ? (vocab.has(b) ? piece : b) : a)} is not in "model.vocab"; download the tokenizer again`);
    }
    if (!first.has(piece)) first.set(piece, rank);
    last.set(piece, rank);
    count.set(piece, (count.get(piece) ?? 0) + 1);
    pairs.add(`${a}\u0000${b}`);
  });
  // one score per piece: its merges must be consecutive, or another piece's merge sits between two of them
  for (const [piece, rank] of first) {
    if (last.get(piece)! - rank + 1 !== count.get(piece)) {
      throw refuse(`forms ${JSON.stringify(piece)} at ranks ${rank} and ${last.get(piece)} with other pieces' merges between`);
    }
  }
  // llama.cpp joins any two adjacent symbols (characters at first, then pieces it formed) whose
  // concatenation is a piece: every such split of a piece must be a merge, or llama.cpp forms
  // pieces the tokenizer never does
  const joinable = (s: string) => vocab.has(s) || [...s].length === 1;
  for (const piece of vocab.keys()) {
    const chars = [...piece];
    for (let i = 1; i < chars.length; i++) {
      const a = chars.slice(0, i).join('');
      const b = chars.slice(i).join('');
      if (joinable(a) && joinable(b) && !pairs.has(`${a}\u0000${b}`)) {
        throw refuse(`has no merge of ${JSON.stringify(a)} and ${JSON.stringify(b)}, though ${JSON.stringify(piece)} is a piece (the merges were not converted from SentencePiece scores)`);
      }
    }
  }
  const scores = new Map<string, number>();
  for (const [piece, rank] of first) scores.set(piece, rank === 0 ? 0 : -rank);
  return scores;
}
