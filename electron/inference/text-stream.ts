// An answer's text as its tokens come, for printing and showing it while it
// is generated. A token is not a piece of text on its own: a character may
// span several byte-level tokens (an emoji, CJK), a decoder treats the start
// of the text differently (SentencePiece drops the first space), and
// transformers' clean_up_tokenization_spaces takes back a space once the
// next characters come (" ." -> ".", " n't" -> "n't"). So the text is
// decoded again at each token, from an anchor a few tokens back, and only
// its settled part is handed out: not a trailing replacement character (a
// character whose bytes have not all come), and with clean-up on, not a
// space among the last four characters (the longest clean-up pattern).
// The pieces handed out, joined with finish(), are the decode of all the
// tokens (text-stream.test.ts checks it on real tokenizers).

export interface Decoder {
  decode(ids: readonly number[]): string;
  /** the decode applies transformers' clean_up_tokenization (removes spaces before punctuation and contractions) */
  readonly cleansUpSpaces: boolean;
}

const REPLACEMENT = '\uFFFD';
/** Tokens decoded at once before the anchor moves up (keeps each push's decode short). */
const WINDOW = 64;
/** Tokens kept before the point the anchor moves to: the decode of what follows them no longer depends on anything earlier. */
const CONTEXT = 8;
/** The longest clean-up pattern (" n't", " 've", " 're"): a space followed by up to three characters. */
const CLEANUP_REACH = 4;

export class TextStream {
  private readonly ids: number[] = [];
  /** windows are decoded from this token on */
  private anchor = 0;
  /** the decode of the window that is handed out (or was already there when the anchor moved) */
  private shown = '';

  constructor(private readonly decoder: Decoder) {}

  /** The tokens pushed so far. */
  get tokens(): number {
    return this.ids.length;
  }

  /** Adds one token; returns the text it settles ('' while the end is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.decoder.decode(this.ids.slice(this.anchor));
    const settled = this.settled(text);
    const piece = this.advance(settled);
    if (settled.length === text.length && this.ids.length - this.anchor > WINDOW) {
      // everything decoded is handed out: decode from closer on
      this.anchor = this.ids.length - CONTEXT;
      this.shown = this.decoder.decode(this.ids.slice(this.anchor));
    }
    return piece;
  }

  /** The text not handed out yet (a character left partial at the end shows as U+FFFD, as the full decode has it). */
  finish(): string {
    return this.advance(this.decoder.decode(this.ids.slice(this.anchor)));
  }

  /** The part of a window's decode that later tokens cannot change. */
  private settled(text: string): string {
    let end = text.length;
    while (end > 0 && text[end - 1] === REPLACEMENT) end--;
    if (this.decoder.cleansUpSpaces) {
      const space = text.slice(0, end).indexOf(' ', Math.max(0, end - CLEANUP_REACH));
      if (space >= 0) end = space;
    }
    return text.slice(0, end);
  }

  private advance(text: string): string {
    // A decode whose earlier text changed (a decoder we do not know) cannot
    // be taken back once shown: wait, the caller's final text is the full decode.
    if (!text.startsWith(this.shown)) return '';
    const piece = text.slice(this.shown.length);
    this.shown = text;
    return piece;
  }
}

/** The decoder of an answer's text: special tokens left out, as the answer is shown. */
export function answerDecoder(tokenizer: { decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string; readonly cleanUpSpaces: boolean }): Decoder {
  return { decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }), cleansUpSpaces: tokenizer.cleanUpSpaces };
}
