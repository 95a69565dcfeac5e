// Whether a model folder has a chat template, read where the tokenizer reads
// it (chat-template-source.ts: chat_template.jinja, else tokenizer_config.json's
// chat_template, a named set's "default"), without loading the tokenizer: what
// an export needs to know to write a Modelfile.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readChatTemplates } from './chat-template-source.js';

/**
 * True when the folder's tokenizer has a chat template. A missing or unreadable tokenizer_config.json counts as
 * one without an inline template (chat_template.jinja is still looked for); a malformed template throws
 * ChatTemplateError, naming the file, as loading the tokenizer would.
 */
export async function hasChatTemplate(modelDir: string): Promise<boolean> {
  let config: Record<string, unknown> | null = null;
  try {
    const parsed: unknown = JSON.parse(await readFile(join(modelDir, 'tokenizer_config.json'), 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) config = parsed as Record<string, unknown>;
  } catch {
    config = null;
  }
  return (await readChatTemplates(modelDir, config)).default !== null;
}
