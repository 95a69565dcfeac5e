// How a prompt is laid out before generation. An adapter answers best when
// it is prompted the way its training rows were laid out (data/formats/*):
//
//   plain   the text as written, after the tokenizer's BOS: completion,
//           text and pre-tokenized rows (a completion row's prompt is
//           exactly this);
//   chat    one user turn (after an optional system message) rendered by the
//           model's chat template (or the fallback one) with the generation
//           prompt: what a chat row's assistant turn follows;
//   alpaca  the Alpaca prompt as alpaca-lora writes it with the text as the instruction
//           (the model has no chat template), else the chat layout, as
//           alpaca rows are rendered.
//
// The tokens are those training saw before the trained part of a row: the
// post-processor's leading tokens (BOS) and the text encoded without special
// tokens, for layouts we write; the template's own text (it writes BOS
// itself) for chat. A template that ignores add_generation_prompt writes no
// assistant header for an unfinished conversation, although a trained row
// has one before its answer: the header is taken from a probe conversation
// that has an answer, as training's mask leaves it untrained (spaces right
// before the answer excepted: they go with the answer's first token). Chat
// generation also stops at the token the template closes an assistant turn
// with (<|im_end|>, <|eot_id|>): the model was trained to end with it.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { chatTemplateOf, type ChatMessage } from '../data/chat-template.js';
import { alpacaPrompt } from '../data/formats/alpaca.js';
import { probeAnswer } from '../data/formats/chat.js';
import type { DatasetFormat } from '../data/options.js';

export const PROMPT_FORMATS = ['plain', 'chat', 'alpaca'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];

export function isPromptFormat(value: unknown): value is PromptFormat {
  return typeof value === 'string' && (PROMPT_FORMATS as readonly string[]).includes(value);
}

/** The prompt layout of rows of a data format. */
export function promptFormatOfData(format: DatasetFormat): PromptFormat {
  return format === 'chat' ? 'chat' : format === 'alpaca' ? 'alpaca' : 'plain';
}

/** Why a system message cannot go with the plain layout (the CLI and the service say it so). */
export const PLAIN_TAKES_NO_SYSTEM = 'a system message needs the chat or alpaca layout; the plain layout continues the text as written';

export interface LaidOutPrompt {
  /** what the model is given, special tokens spelled out (BOS included) */
  text: string;
  ids: number[];
  /** the layout, in words ("the model's chat template") */
  layout: string;
  /** ids that end generation besides the model's end-of-sequence ids */
  stopTokenIds: number[];
}

/** A layout that cannot take this prompt; `field` is the setting to change. */
export class PromptFormatError extends Error {
  constructor(message: string, readonly field: 'system' | 'promptFormat') {
    super(message);
    this.name = 'PromptFormatError';
  }
}

/** reasoning: the adapter was trained on turns with their reasoning (TrainedPromptFormat.reasoning) */
function chatLayout(tokenizer: ModelTokenizer, prompt: string, system: string, reasoning = false): LaidOutPrompt {
  const template = chatTemplateOf(tokenizer);
  const user: ChatMessage = { role: 'user', content: prompt };
  const messages: ChatMessage[] = system.trim() !== '' ? [{ role: 'system', content: system }, user] : [user];
  let text: string;
  try {
    text = template.render(messages, true);
  } catch (e) {
    if (system.trim() !== '') {
      // a template that refuses system messages (Mistral's, Gemma's) says so in its own words: name the message
      try {
        template.render([user], true);
      } catch {
        throw new PromptFormatError(`${(e as Error).message}; try the plain layout`, 'promptFormat');
      }
      throw new PromptFormatError(`${template.layout} takes no system message (${(e as Error).message}): leave the system message out`, 'system');
    }
    throw new PromptFormatError(`${(e as Error).message}; try the plain layout`, 'promptFormat');
  }
  // The conversation as a trained row has it before the answer: the header a template that ignores
  // add_generation_prompt leaves out comes from the probe (spaces right before the answer go with it).
  // A model trained on turns with their reasoning writes its own (Qwen3's <think> block), as after
  // transformers' add_generation_prompt: the template's empty block is not prefilled then.
  const probe = probeAnswer(tokenizer, messages);
  const ownsGenerationPrompt = reasoning && text !== template.render(messages, false);
  if (probe && !ownsGenerationPrompt && probe.answerAt >= text.length && probe.text.startsWith(text)) text += probe.text.slice(text.length, probe.answerAt).replace(/ +$/, '');
  const endId = probe?.closer ? tokenizer.tokenToId(probe.closer) : null;
  return { text, ids: tokenizer.encode(text, { addSpecialTokens: false }), layout: template.layout, stopTokenIds: endId === null ? [] : [endId] };
}

/** Our own layout of `text`: the tokens the tokenizer's post-processor puts first (BOS) + the text. */
function written(tokenizer: ModelTokenizer, text: string, layout: string): LaidOutPrompt {
  const prefix = tokenizer.specialTokensAround().prefix;
  const shown = prefix.length > 0 ? tokenizer.decode(prefix, { skipSpecialTokens: false }) : '';
  return { text: shown + text, ids: [...prefix, ...tokenizer.encode(text, { addSpecialTokens: false })], layout, stopTokenIds: [] };
}

/**
 * The prompt as `format` lays it out, with its tokens. `system`: a system message (chat and alpaca only);
 * `reasoning`: the adapter was trained on chat turns with their reasoning (trained-prompt-format.ts).
 */
export function layOutPrompt(tokenizer: ModelTokenizer, format: PromptFormat, prompt: string, system = '', reasoning = false): LaidOutPrompt {
  switch (format) {
    case 'plain':
      if (system.trim() !== '') throw new PromptFormatError(PLAIN_TAKES_NO_SYSTEM, 'system');
      return written(tokenizer, prompt, 'the text as written');
    case 'chat':
      return chatLayout(tokenizer, prompt, system, reasoning);
    case 'alpaca':
      if (tokenizer.chatTemplate) return { ...chatLayout(tokenizer, prompt, system), layout: "the model's chat template (as alpaca rows are rendered for a model that has one)" };
      return written(tokenizer, alpacaPrompt({ instruction: prompt, input: '', output: '', system }), 'the Alpaca prompt as alpaca-lora writes it');
  }
}
