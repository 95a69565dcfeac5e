// The training process's own memory, beyond what the engine allocates (its
// tensors and its threads' scratch, which the addon's estimate counts to the
// byte): Node and the app's code, the tokenizer, the data rows. A run on the
// CPU holds it in the same RAM as the engine, so "fits" must count it: on the
// demo model the engine needs 6 MiB and the process peaked at 84 MiB.
//
// Measured on Linux (the training child's peak RSS minus the engine's
// tensors and scratch, 30 steps; process-memory.test.ts holds the bound
// against real runs):
//   demo tokenizer (41 KB tokenizer.json)          78 MiB
//   Llama 2's (1.8 MB, 32k pieces, 61k merges)     132 MiB: +54 MiB, 31x the file
//   Llama 3's (9.1 MB, 128k pieces, 280k merges)   226 MiB: +148 MiB, 17x the file
// The tokenizer's part is not a fixed multiple of its file (it depends on how
// the JavaScript tokenizer holds merges and pieces), so the bound takes the
// largest ratio measured: a Llama-3 tokenizer is overestimated by 130-175 MiB
// (as the child's heap happens to be collected), ~2-3% of a 1B-model run.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { TOKENIZER_FILE } from '../models/tokenizer.js';

const MiB = 2 ** 20;

/** Node, the app's modules and the addon's code, the V8 heap a run grows: 78 MiB measured, with room. */
export const PROCESS_BASE_BYTES = 96 * MiB;

/** The tokenizer in memory per byte of its tokenizer.json: the largest ratio measured (Llama 2's, 31x). */
export const TOKENIZER_BYTES_PER_FILE_BYTE = 32;

/** The tokenizer's memory in the process, from its tokenizer.json's size (0 when there is none to read). */
export function tokenizerBytes(modelDir: string): number {
  try {
    return statSync(join(modelDir, TOKENIZER_FILE)).size * TOKENIZER_BYTES_PER_FILE_BYTE;
  } catch {
    return 0;
  }
}

/** What the training process holds beyond the engine: its base, the tokenizer and the rows it loaded (their bytes). */
export function trainingProcessBytes(modelDir: string, rowsBytes = 0): number {
  return PROCESS_BASE_BYTES + tokenizerBytes(modelDir) + rowsBytes;
}
