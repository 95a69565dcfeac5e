// Chat templates: the model's own (chat_template.jinja or tokenizer_config.json's
// `chat_template`, as transformers reads them: models/chat-template-source.ts),
// rendered with @huggingface/jinja exactly as transformers'
// apply_chat_template renders it (variables: messages, bos_token, eos_token,
// pad_token, add_generation_prompt; raise_exception is a global that
// @huggingface/jinja itself defines, throwing an Error with the template's
// message, so it is not passed again: the library refuses a redeclaration).
//
// A model without a chat template (a base model) gets FALLBACK_CHAT_TEMPLATE,
// a plain-text layout that needs no special tokens besides BOS/EOS:
//
//   <bos>{system}\n\n### User:\n{user}\n\n### Assistant:\n{assistant}<eos>\n\n### User:\n...
//
// Each assistant turn ends with EOS so the model learns where to stop. The
// report says when the fallback is used, because a model fine-tuned on it
// must be prompted the same way.
// A change to the tokens, labels or row errors this gives needs token-cache.ts CACHE_VERSION bumped.
import { Template } from '@huggingface/jinja';
import type { ModelTokenizer } from '../models/tokenizer.js';
import { RowError } from './problems.js';

/**
 * What a chat row's layout adds when its trained turns carry reasoning_content
 * (the report lists it; a run records it, and generation then lets the model
 * write its own reasoning instead of prefilling the template's empty block).
 */
export const WITH_REASONING = ", the assistant's reasoning trained";
/** What it adds when the rows carry reasoning_content but the template does not write it (the report says so). */
export const WITHOUT_REASONING = ", the assistant's reasoning left out (the chat template does not write it)";

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** an assistant turn's reasoning, passed to the template as transformers passes it (Qwen3's template writes it in <think>) */
  reasoning_content?: string;
}

export const FALLBACK_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if not loop.first %}{{ '\\n\\n' }}{% endif %}" +
  "{% if message['role'] == 'system' %}{{ message['content'] }}" +
  "{% elif message['role'] == 'user' %}{{ '### User:\\n' + message['content'] }}" +
  "{% elif message['role'] == 'assistant' %}{{ '### Assistant:\\n' + message['content'] + eos_token }}" +
  "{% else %}{{ raise_exception('unknown role ' + message['role']) }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '\\n\\n### Assistant:\\n' }}{% endif %}";

export interface ChatTemplate {
  /** 'model': the model's chat_template; 'fallback': FALLBACK_CHAT_TEMPLATE */
  source: 'model' | 'fallback';
  /** the layout in words, as reports and generation name it */
  layout: string;
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string;
}

const cache = new WeakMap<ModelTokenizer, ChatTemplate>();

/** The chat template of a tokenizer's model (parsed once per tokenizer). */
export function chatTemplateOf(tokenizer: ModelTokenizer): ChatTemplate {
  const known = cache.get(tokenizer);
  if (known) return known;
  const source = tokenizer.chatTemplate ? 'model' : 'fallback';
  let template: Template;
  try {
    template = new Template(tokenizer.chatTemplate ?? FALLBACK_CHAT_TEMPLATE);
  } catch (e) {
    throw new Error(`${tokenizer.chatTemplateSource ?? tokenizer.dir}: the chat template cannot be parsed (${(e as Error).message}); fix or remove it`);
  }
  const variables = {
    bos_token: tokenizer.bosToken ?? '',
    eos_token: tokenizer.eosToken ?? '',
    pad_token: tokenizer.padToken ?? '',
  };
  const chat: ChatTemplate = {
    source,
    layout: source === 'model' ? "the model's chat template" : 'the fallback chat template (### User / ### Assistant)',
    render(messages, addGenerationPrompt) {
      try {
        return template.render({ ...variables, messages: messages.map((m) => ({ ...m })), add_generation_prompt: addGenerationPrompt });
      } catch (e) {
        // raise_exception('...') throws a plain Error with the template's own words.
        const plain = (e as Error).constructor === Error;
        throw new RowError('template', plain ? `the chat template refused this conversation: ${(e as Error).message}` : `the chat template failed on this conversation (${(e as Error).message})`);
      }
    },
  };
  cache.set(tokenizer, chat);
  return chat;
}
