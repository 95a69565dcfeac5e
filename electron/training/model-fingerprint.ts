// A cheap fingerprint of a model folder: what a run depends on, from the
// headers only. A resumed run may find its model at a new path (--model with
// --resume) when the fingerprint matches the one recorded when it started:
// the same config.json (as parsed), the same tensors by name, dtype and
// shape, and the same tokenizer files (the data is tokenized again on
// resume). The weight values are not read (that would cost a full read of
// every shard); two different fine-tunes of one architecture have the same
// headers, so this guards against a wrong folder, not against a swapped file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelFolder } from '../models/folder.js';

// chat_template.jinja: transformers' (and our) chat template when it is there (models/chat-template-source.ts)
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];

/** JSON with object keys sorted, so the same value always gives the same text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

function fileHash(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null; // absent: recorded as absent
  }
}

/**
 * The format of a fingerprint: "v2:" and then the hash (v2 added
 * chat_template.jinja; a v1 one is not compared). Only the files
 * themselves go in (config.json as parsed, the safetensors headers' names,
 * dtypes and shapes, the tokenizer files), never this app's own reading of
 * them (a ModelSpec grows fields with new versions: a fingerprint of it would
 * refuse every resume after an update).
 */
export const FINGERPRINT_VERSION = 'v2';

/** "v2:sha256:<hex>" of the model's config.json, its tensors' names, dtypes and shapes, and its tokenizer files. */
export function modelFingerprint(folder: Pick<ModelFolder, 'dir' | 'weights'>): string {
  let config: unknown = null;
  try {
    config = JSON.parse(readFileSync(join(folder.dir, 'config.json'), 'utf8'));
  } catch {
    config = null; // an opened folder has a readable one; recorded as absent otherwise
  }
  const hash = createHash('sha256');
  hash.update(canonical({
    config,
    tensors: folder.weights.map((w) => [w.name, w.dtype, w.shape]),
    tokenizer: Object.fromEntries(TOKENIZER_FILES.map((f) => [f, fileHash(join(folder.dir, f))])),
  }));
  return `${FINGERPRINT_VERSION}:sha256:${hash.digest('hex')}`;
}

/** Whether a recorded fingerprint was made the way this version makes them (an older one cannot be compared: it is not checked). */
export function comparableFingerprint(recorded: string): boolean {
  return recorded.startsWith(`${FINGERPRINT_VERSION}:`);
}
