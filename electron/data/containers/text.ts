// Plain text (.txt, .md): one document per paragraph, paragraphs separated by
// one or more blank lines (lines of only whitespace). Lines inside a
// paragraph keep their line breaks. Paragraphs, not the whole file, because a
// text file is usually many short documents (notes, articles, poems) and a
// whole file rarely fits one sequence; someone who wants long documents
// writes them without blank lines or uses JSONL {"text": ...}. Every
// paragraph is a row {"text": paragraph} starting at its first line.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import type { ContainerRead, SourceRecord } from './records.js';

export function readPlainText(text: string): ContainerRead {
  const records: SourceRecord[] = [];
  const lines = text.split('\n');
  let current: string[] = [];
  let startLine = 0;
  const flush = () => {
    if (current.length) records.push({ line: startLine, value: { text: current.join('\n') } });
    current = [];
  };
  lines.forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      flush();
      return;
    }
    if (current.length === 0) startLine = index + 1;
    current.push(line);
  });
  flush();
  return { kind: 'text', records, problems: [] };
}
