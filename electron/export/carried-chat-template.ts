// The chat layout a run trained on, carried into the exports that hold the
// tokenizer (merged, gguf-model) when the base model cannot carry it: a run of
// chat rows on a base without a chat template trained on our fallback layout
// (data/chat-template.ts). Written as the model's chat template there
// (chat_template.jinja; tokenizer.chat_template in a GGUF), so
// apply_chat_template and llama.cpp's chat lay prompts out as training did;
// without it transformers refuses to chat and llama.cpp falls back to ChatML.
// A base with its own template carries it in its tokenizer files.
import { FALLBACK_CHAT_TEMPLATE } from '../data/chat-template.js';
import { trainedPromptFormat } from '../inference/trained-prompt-format.js';
import { hasChatTemplate } from '../models/chat-template-file.js';

/** The template to write into an export of `sourceDir` (a run, or a checkpoint of one) on the base in `baseDir`; null: none to add. */
export async function chatTemplateToCarry(sourceDir: string, baseDir: string): Promise<string | null> {
  const trained = await trainedPromptFormat(sourceDir);
  if (trained?.dataFormat !== 'chat') return null;
  return (await hasChatTemplate(baseDir)) ? null : FALLBACK_CHAT_TEMPLATE;
}
