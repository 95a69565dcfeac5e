// A dataset far over any test machine's memory once batched: 30,000
// pre-tokenized rows of 256 ids (no tokenizer to run: the rows load in about
// a second). The memory check sizes a run by what its data lets a batch hold
// (no more rows than there are, padded to the longest), so a run that must
// not fit needs this many rows of this length, not just a large --batch-size.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Prng } from '../random/prng.js';
import { tempDir } from './e2e-fixtures.js';

export const MANY_ROWS = 30000;
export const ROW_TOKENS = 256;

const written = new Map<number, Promise<string>>();

/** The file (written once per process and vocabulary): MANY_ROWS rows of ROW_TOKENS ids below `vocab`. */
export function manyRowsFile(vocab: number): Promise<string> {
  const known = written.get(vocab);
  if (known) return known;
  const file = new Promise<string>((resolve, reject) => {
    const path = join(tempDir('many-rows'), 'rows.jsonl');
    const out = createWriteStream(path);
    const rng = new Prng(5);
    out.on('error', reject);
    for (let r = 0; r < MANY_ROWS; r++) {
      const ids = Array.from({ length: ROW_TOKENS }, () => Math.floor(rng.nextFloat() * vocab));
      out.write(`{"input_ids":[${ids.join(',')}]}\n`);
    }
    out.end(() => resolve(path));
  });
  written.set(vocab, file);
  return file;
}
