// Whether a model folder has a chat template (tokenizer_config.json's
// chat_template, as the tokenizer reads it), without loading the tokenizer:
// what an export needs to know to write a Modelfile.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function hasChatTemplate(modelDir: string): Promise<boolean> {
  try {
    const config = JSON.parse(await readFile(join(modelDir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown };
    return typeof config.chat_template === 'string';
  } catch {
    return false;
  }
}
