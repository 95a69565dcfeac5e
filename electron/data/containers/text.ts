// Plain text (.txt, .md): one document per paragraph, paragraphs separated by
// one or more blank lines (lines of only whitespace). Lines inside a
// paragraph keep their line breaks. Paragraphs, not the whole file, because a
// text file is usually many short documents (notes, articles, poems) and a
// whole file rarely fits one sequence; someone who wants long documents
// writes them without blank lines or uses JSONL {"text": ...}. Every
// paragraph is a row {"text": paragraph} starting at its first line.
// Read from the text, or from the file a line at a time (line-file.ts):
// both through Paragraphs.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { constants } from 'node:buffer';
import { DataError } from '../../training/data.js';
import { sinkInto, type ContainerRead, type RecordSink } from './records.js';

export function readPlainText(text: string, file = ''): ContainerRead {
  const read: ContainerRead = { kind: 'text', records: [], problems: [] };
  const paragraphs = new Paragraphs(sinkInto(read), file);
  text.split('\n').forEach((raw, index) => paragraphs.line(raw, index + 1));
  paragraphs.end();
  return read;
}

/** Lines in, paragraphs out (as records), each handed on when a blank line or the end closes it. */
export class Paragraphs {
  private current: string[] = [];
  private startLine = 0;
  /** characters of the paragraph's text so far (its lines and the line breaks between them) */
  private length = 0;

  constructor(
    private readonly sink: RecordSink,
    private readonly file: string,
    /** the longest paragraph: one string's size (only a file read a line at a time can hold a longer one) */
    private readonly maxLength = constants.MAX_STRING_LENGTH,
  ) {}

  line(raw: string, lineNumber: number): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      this.flush();
      return;
    }
    if (this.current.length === 0) this.startLine = lineNumber;
    this.length += (this.current.length > 0 ? 1 : 0) + line.length;
    if (this.length > this.maxLength) {
      throw new DataError(`${this.file}:${this.startLine}: the paragraph that starts here runs past line ${lineNumber} without a blank line and is more than one string can hold (${this.maxLength.toLocaleString('en-US')} characters); each paragraph is one row: separate the documents with blank lines, or write them as JSON Lines ({"text": ...} a line)`);
    }
    this.current.push(line);
  }

  end(): void {
    this.flush();
  }

  private flush(): void {
    if (this.current.length) this.sink.record({ line: this.startLine, value: { text: this.current.join('\n') } });
    this.current = [];
    this.length = 0;
  }
}
