// JSON Lines: one JSON value per line; blank lines are skipped.
// A change to the rows, lines or problems this reads needs ../token-cache.ts CACHE_VERSION bumped.
import { malformed, type ContainerRead, type SourceRecord } from './records.js';
import type { RowProblem } from '../problems.js';

export function readJsonl(text: string, file: string): ContainerRead {
  const records: SourceRecord[] = [];
  const problems: RowProblem[] = [];
  let start = 0;
  let line = 1;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const raw = text.slice(start, end);
    if (raw.trim() !== '') {
      try {
        records.push({ line, value: JSON.parse(raw) });
      } catch (e) {
        problems.push(malformed(file, line, `not valid JSON (${(e as Error).message})`));
      }
    }
    start = end + 1;
    line++;
  }
  return { kind: 'jsonl', records, problems };
}
