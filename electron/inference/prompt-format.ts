// How a prompt is laid out before generation. An adapter answers best when
// it is prompted the way its training rows were laid out (data/formats/*):
//
//   plain   the text as written, after the tokenizer's BOS: completion,
//           text and pre-tokenized rows (a completion row's prompt is
//           exactly this);
//   chat    one user turn (after an optional system message) rendered by the
//           model's chat template (or the fallback one) with the generation
//           prompt: what a chat row's assistant turn follows;
//   alpaca  the Stanford Alpaca prompt with the text as the instruction
//           (the model has no chat template), else the chat layout, as
//           alpaca rows are rendered.
//
// The tokens are those training saw before the trained part: the
// post-processor's leading tokens (BOS) and the text encoded without special
// tokens, for layouts we write; the template's own text (it writes BOS
// itself) for chat. Generation also stops at the token the template closes an
// assistant turn with (<|im_end|>, <|eot_id|>): the model was trained to end
// its answer with it.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { chatTemplateOf, type ChatMessage } from '../data/chat-template.js';
import { alpacaPrompt } from '../data/formats/alpaca.js';
import { assistantTurnEnd } from '../data/formats/chat.js';
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

export interface LaidOutPrompt {
  /** the text the model is given (for chat, the template's rendering) */
  text: string;
  ids: number[];
  /** the layout, in words ("the model's chat template") */
  layout: string;
  /** ids that end generation besides the model's end-of-sequence ids */
  stopTokenIds: number[];
}

export class PromptFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptFormatError';
  }
}

function chatLayout(tokenizer: ModelTokenizer, prompt: string, system: string): LaidOutPrompt {
  const template = chatTemplateOf(tokenizer);
  const messages: ChatMessage[] = [];
  if (system.trim() !== '') messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: prompt });
  let text: string;
  try {
    text = template.render(messages, true);
  } catch (e) {
    throw new PromptFormatError(`${(e as Error).message}; try the plain layout`);
  }
  const end = assistantTurnEnd(tokenizer);
  const endId = end === null ? null : tokenizer.tokenToId(end);
  return {
    text,
    ids: tokenizer.encode(text, { addSpecialTokens: false }),
    layout: template.source === 'model' ? "the model's chat template" : 'the fallback chat template (### User / ### Assistant)',
    stopTokenIds: endId === null ? [] : [endId],
  };
}

/** Our own layout of `text`: BOS (as the tokenizer's post-processor puts it first) + the text. */
function written(tokenizer: ModelTokenizer, text: string, layout: string): LaidOutPrompt {
  return { text, ids: [...tokenizer.specialTokensAround().prefix, ...tokenizer.encode(text, { addSpecialTokens: false })], layout, stopTokenIds: [] };
}

/** The prompt as `format` lays it out, with its tokens. `system`: a system message (chat and alpaca only). */
export function layOutPrompt(tokenizer: ModelTokenizer, format: PromptFormat, prompt: string, system = ''): LaidOutPrompt {
  switch (format) {
    case 'plain':
      if (system.trim() !== '') throw new PromptFormatError('a system message needs the chat or alpaca layout; the plain layout continues the text as written');
      return written(tokenizer, prompt, 'the text as written');
    case 'chat':
      return chatLayout(tokenizer, prompt, system);
    case 'alpaca':
      if (tokenizer.chatTemplate) return { ...chatLayout(tokenizer, prompt, system), layout: "the model's chat template (as alpaca rows are rendered for a model that has one)" };
      return written(tokenizer, alpacaPrompt({ instruction: prompt, input: '', output: '', system }), 'the Stanford Alpaca prompt');
  }
}
