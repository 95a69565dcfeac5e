// UTF-8 text cut into lines as its chunks arrive (line-file.ts): every line
// checked to be UTF-8, then decoded. A line ends at each 0x0A byte, which in
// UTF-8 is never inside a character, so a line's bytes hold whole characters
// whatever the chunks, and its first invalid byte is the one checkedUtf8
// (decode-text.ts) finds in the whole text: its line, and its byte in the
// line, are reported the same way (invalidUtf8Error). A line longer than one
// string can hold is not kept: it is checked as it passes and reported to
// `overlong` instead of decoded.
import { constants, isUtf8 } from 'node:buffer';
import { firstInvalidUtf8, type EncodingError } from './decode-text.js';

export interface LineHandlers {
  /** a complete line (without its "\n"); `text` is null when decoding is off (`Utf8Lines.decode`) */
  line(text: string | null, line: number): void;
  /** a line of more than `maxLineBytes` bytes, checked but never held */
  overlong(line: number): void;
  /** the first byte that is not UTF-8: reading stops (`column` is 1-based, in bytes, as checkedUtf8 counts) */
  invalid(line: number, column: number, byte: number): EncodingError;
}

/**
 * How many bytes at the end of `bytes` may start a character that the next
 * piece completes (0-3): the last lead byte within three bytes of the end,
 * when its character needs more bytes than are left.
 */
function openTail(bytes: Uint8Array): number {
  for (let k = 1; k <= Math.min(3, bytes.length); k++) {
    const b = bytes[bytes.length - k];
    if (b < 0x80) return 0;
    if (b >= 0xc0) {
      const needs = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return needs > k ? k : 0;
    }
  }
  return 0;
}

export class Utf8Lines {
  /** the number of the line being read (1-based) */
  lineNumber = 1;
  /** whether lines are decoded (off: only checked, when what follows an error cannot change the outcome) */
  decode = true;
  /** pieces of the line read so far, when it started in an earlier chunk */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** the line passed maxLineBytes: its bytes are checked as they come, not held */
  private overlong = false;
  /** overlong: bytes of the line checked so far, and the end of a character cut by the last piece */
  private checkedBytes = 0;
  private open: Buffer = Buffer.alloc(0);

  constructor(
    private readonly handlers: LineHandlers,
    private readonly maxLineBytes = constants.MAX_STRING_LENGTH,
  ) {}

  /** Reads the lines that end in `chunk`, holding the start of the one that does not. */
  push(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(0x0a); end >= 0; end = chunk.indexOf(0x0a, start)) {
      if (this.heldBytes === 0 && !this.overlong && end - start <= this.maxLineBytes) this.emit(chunk.subarray(start, end));
      else {
        this.hold(chunk.subarray(start, end));
        this.finishHeld();
      }
      start = end + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
  }

  /** The end of the text: what is held is its last line (empty after a final "\n", as splitting the text gives). */
  end(): void {
    if (this.overlong || this.heldBytes > 0) this.finishHeld();
    else this.emit(Buffer.alloc(0));
  }

  private emit(bytes: Buffer): void {
    if (!isUtf8(bytes)) {
      const bad = firstInvalidUtf8(bytes);
      throw this.handlers.invalid(this.lineNumber, bad + 1, bytes[bad]);
    }
    this.handlers.line(this.decode ? bytes.toString('utf8') : null, this.lineNumber);
    this.lineNumber++;
  }

  private hold(piece: Buffer): void {
    if (piece.length === 0) return;
    if (!this.overlong && this.heldBytes + piece.length <= this.maxLineBytes) {
      // a copy: the chunk's buffer may be reused once handed on (a decompressor's output)
      this.held.push(Buffer.from(piece));
      this.heldBytes += piece.length;
      return;
    }
    if (!this.overlong) {
      this.overlong = true;
      const held = this.held;
      this.held = [];
      this.heldBytes = 0;
      for (const h of held) this.checkPiece(h);
    }
    this.checkPiece(piece);
  }

  /** Checks the next piece of an overlong line, keeping a character it cuts for the next piece. */
  private checkPiece(piece: Buffer): void {
    const bytes = this.open.length > 0 ? Buffer.concat([this.open, piece]) : piece;
    const at = this.checkedBytes;
    const keep = openTail(bytes);
    const whole = bytes.subarray(0, bytes.length - keep);
    if (!isUtf8(whole)) {
      const bad = firstInvalidUtf8(whole);
      throw this.handlers.invalid(this.lineNumber, at + bad + 1, whole[bad]);
    }
    this.checkedBytes = at + whole.length;
    this.open = Buffer.from(bytes.subarray(bytes.length - keep));
  }

  private finishHeld(): void {
    if (this.overlong) {
      // a character still open at the line's end is cut short: checked alone, it is invalid where it starts
      if (this.open.length > 0) {
        const bad = firstInvalidUtf8(this.open);
        throw this.handlers.invalid(this.lineNumber, this.checkedBytes + bad + 1, this.open[bad]);
      }
      this.handlers.overlong(this.lineNumber);
      this.lineNumber++;
      this.overlong = false;
      this.checkedBytes = 0;
      return;
    }
    const line = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    this.emit(line);
  }
}
