// Alpaca rows: {"instruction", "input" (optional), "output", "system" (optional)}.
//
// Layout: when the model has a chat template, the row is a conversation
// (system?, user: instruction + "\n\n" + input, assistant: output) rendered
// by it, so the fine-tuned model is prompted the way it was trained and the
// way chat front-ends prompt it. Without one (a base model), the Alpaca
// prompt as alpaca-lora (and most SFT recipes) write it, with "system"
// replacing its preamble when given (Stanford's train.py has no line break
// after "### Response:"; the trained part is the same, the output and EOS):
//
//   Below is an instruction that describes a task, paired with an input that
//   provides further context. Write a response that appropriately completes
//   the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}<eos>
//
// (without "input": "...describes a task. Write a response ..." and no Input
// section). The output and EOS are trained.
// A change to the tokens, labels or row errors this gives needs ../token-cache.ts CACHE_VERSION bumped.
import type { ModelTokenizer } from '../../models/tokenizer.js';
import type { ChatMessage } from '../chat-template.js';
import { renderConversation } from './chat.js';
import { asObject, optionalString, requireString, type Fields, type RenderedRow } from './row.js';

export const ALPACA_PREAMBLE_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.';
export const ALPACA_PREAMBLE =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

export function isAlpacaRow(row: Fields): boolean {
  return 'instruction' in row && 'output' in row;
}

export interface AlpacaRow {
  instruction: string;
  input: string;
  output: string;
  system: string;
}

export function parseAlpaca(value: unknown): AlpacaRow {
  const row = asObject(value);
  return {
    instruction: requireString(row, 'instruction'),
    input: optionalString(row, 'input'),
    output: requireString(row, 'output'),
    system: optionalString(row, 'system'),
  };
}

/** The Alpaca prompt as alpaca-lora writes it: everything before the output. */
export function alpacaPrompt(row: AlpacaRow): string {
  const hasInput = row.input.trim() !== '';
  const preamble = row.system.trim() !== '' ? row.system : hasInput ? ALPACA_PREAMBLE_WITH_INPUT : ALPACA_PREAMBLE;
  const input = hasInput ? `### Input:\n${row.input}\n\n` : '';
  return `${preamble}\n\n### Instruction:\n${row.instruction}\n\n${input}### Response:\n`;
}

export function renderAlpaca(row: AlpacaRow, tokenizer: ModelTokenizer): RenderedRow {
  if (tokenizer.chatTemplate) {
    const messages: ChatMessage[] = [];
    if (row.system.trim() !== '') messages.push({ role: 'system', content: row.system });
    messages.push({ role: 'user', content: row.input.trim() !== '' ? `${row.instruction}\n\n${row.input}` : row.instruction });
    messages.push({ role: 'assistant', content: row.output });
    return { ...renderConversation(messages, tokenizer), layout: "the model's chat template (alpaca rows as user/assistant turns)" };
  }
  const prompt = alpacaPrompt(row);
  const text = prompt + row.output;
  return { kind: 'rendered', text, trainSpans: [[prompt.length, text.length]], addSpecialTokens: true, appendEos: true, layout: 'the Alpaca prompt as alpaca-lora writes it (the model has no chat template)' };
}
