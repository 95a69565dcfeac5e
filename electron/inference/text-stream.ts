// An answer's text as its tokens come, for printing and showing it while it
// is generated. A token is not a piece of text on its own: a character may
// span several byte-level tokens (an emoji, CJK), a decoder treats the start
// of the text differently (SentencePiece drops the first space), and
// transformers' clean_up_tokenization takes spaces back once the next
// characters come (" ." -> ".", " n't" -> "n't", " ' " -> "'"). So:
// - the tokens are decoded without clean-up, from an anchor a few tokens
//   back (so a long answer costs a bounded decode per token);
// - only the settled part of that text is taken: not a trailing replacement
//   character (a character whose bytes have not all come), and with clean-up
//   on, not from a space on that may begin a clean-up pattern reaching past
//   the cut (" '" may become " ' ", a space alone may become " ," ...): the
//   cut moves back to before such a space until no pattern can straddle it,
//   so every pattern lies whole on one side and cleaning the settled part
//   gives the start of the cleaned whole;
// - clean-up is applied to each newly settled piece (between two such cuts),
//   and the piece handed out.
// The pieces handed out, joined with finish(), are the decode of all the
// tokens (text-stream.test.ts checks it on real tokenizers and token soup).

export interface Decoder {
  /** the text of the tokens, special tokens left out, WITHOUT clean-up */
  decodeRaw(ids: readonly number[]): string;
  /** the answer's text applies transformers' clean_up_tokenization (cleanUpTokenization) */
  readonly cleansUpSpaces: boolean;
}

const REPLACEMENT = '\uFFFD';
/** Tokens decoded at once before the anchor moves up (keeps each push's decode short). */
const WINDOW = 64;
/** Tokens kept before the point the anchor moves to. */
const CONTEXT = 8;
/**
 * What clean-up replaces (cleanUpTokenization), each beginning with a space;
 * and what it replaces in two steps: " ' " collapses to "'" before " 'm",
 * " 's", " 've", " 're" are looked for, so a space before " ' m" goes too.
 */
const CLEANUP_PATTERNS = [' .', ' ?', ' !', ' ,', " ' ", " n't", " 'm", " 's", " 've", " 're", "  ' m", "  ' s", "  ' ve", "  ' re"];
/** The longest of them, less its first space. */
const CLEANUP_REACH = 5;

/**
 * transformers' clean_up_tokenization, as the tokenizers library applies it
 * (each replacement over the whole text, in this order, without rescanning).
 */
export function cleanUpTokenization(text: string): string {
  return text
    .replace(/ \./g, '.')
    .replace(/ \?/g, '?')
    .replace(/ !/g, '!')
    .replace(/ ,/g, ',')
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}

export class TextStream {
  private readonly ids: number[] = [];
  /** windows are decoded from this token on */
  private anchor = 0;
  /** the start of the window's raw decode that is settled (and counted in `settled`) */
  private windowSettled = '';
  /** the settled raw text not handed out yet (it starts at a cut no clean-up pattern can straddle) */
  private fresh = '';

  constructor(private readonly decoder: Decoder) {}

  /** The tokens pushed so far. */
  get tokens(): number {
    return this.ids.length;
  }

  /** Adds one token; returns the text it settles ('' while the end is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.decoder.decodeRaw(this.ids.slice(this.anchor));
    this.take(text.slice(0, this.settledEnd(text)));
    const piece = this.handOut();
    if (this.ids.length - this.anchor > WINDOW) this.moveAnchor(text);
    return piece;
  }

  /** The text not handed out yet (a character left partial at the end shows as U+FFFD, as the full decode has it). */
  finish(): string {
    this.take(this.decoder.decodeRaw(this.ids.slice(this.anchor)));
    return this.handOut();
  }

  /** Where the settled part of a window's raw decode ends. */
  private settledEnd(text: string): number {
    let end = text.length;
    while (end > 0 && text[end - 1] === REPLACEMENT) end--;
    if (!this.decoder.cleansUpSpaces) return end;
    const known = end;
    let cut = end;
    for (let s = cut - 1; s >= Math.max(0, cut - CLEANUP_REACH); s--) {
      if (text[s] !== ' ') continue;
      // a pattern from this space past the cut that the known characters do not rule out
      const open = CLEANUP_PATTERNS.some((p) => s + p.length > cut && p.startsWith(text.slice(s, Math.min(known, s + p.length))));
      if (open) {
        cut = s;
        s = cut; // look again from the new cut
      }
    }
    return cut;
  }

  /** Counts the window's settled text (a decode whose start changed, which no decoder we know does, waits for the end). */
  private take(windowSettled: string): void {
    if (!windowSettled.startsWith(this.windowSettled)) return;
    this.fresh += windowSettled.slice(this.windowSettled.length);
    this.windowSettled = windowSettled;
  }

  /**
   * The newly settled text, cleaned on its own: both its ends are cuts no
   * clean-up pattern straddles, so cleaning it alone is cleaning it within the
   * whole text (and the work per token stays bounded, not the answer's length).
   */
  private handOut(): string {
    const piece = this.decoder.cleansUpSpaces ? cleanUpTokenization(this.fresh) : this.fresh;
    this.fresh = '';
    return piece;
  }

  /**
   * Decodes from closer on, when the new window's decode is the end of the
   * old one's (so positions map one to one) and everything before it is
   * settled; else tries again at the next token.
   */
  private moveAnchor(window: string): void {
    const next = this.ids.length - CONTEXT;
    const tail = this.decoder.decodeRaw(this.ids.slice(next));
    const before = window.length - tail.length;
    if (before < 0 || !window.endsWith(tail) || this.windowSettled.length < before) return;
    this.anchor = next;
    this.windowSettled = this.windowSettled.slice(before);
  }
}

/** The decoder of an answer's text: special tokens left out, as the answer is shown. */
export function answerDecoder(tokenizer: {
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean; cleanUpSpaces?: boolean }): string;
  readonly cleanUpSpaces: boolean;
}): Decoder {
  return { decodeRaw: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false }), cleansUpSpaces: tokenizer.cleanUpSpaces };
}
