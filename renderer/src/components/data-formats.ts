// The dataset formats and row problems as the Data page words them (the
// loader's ids, like "completion" or "missing-field", stay out of sight).
import type { DataFormat, DatasetReport } from '../../../electron/api/contract.js';

type Format = Exclude<DataFormat, 'auto'>;

/** A format's name in the report ("Prompt and completion (detected)"). */
export const FORMAT_NAMES: Record<Format, string> = {
  alpaca: 'Alpaca',
  chat: 'Chat',
  completion: 'Prompt and completion',
  text: 'Plain text',
  tokenized: 'Pre-tokenized',
};

/**
 * The Format choices, with the fields each reads: the ones the loader
 * accepts (electron/data/formats), so an error naming a field matches the
 * option (chat reads "messages", ShareGPT's "conversations", or TRL's
 * conversational "prompt" and "completion" lists of messages).
 */
export const FORMAT_OPTIONS: readonly { value: DataFormat; label: string }[] = [
  { value: 'auto', label: 'Detect from the fields' },
  { value: 'alpaca', label: 'Alpaca (instruction, input, output)' },
  { value: 'chat', label: 'Chat (messages, conversations, or prompt / completion message lists)' },
  { value: 'completion', label: 'Prompt and completion (prompt, completion)' },
  { value: 'text', label: 'Plain text (text)' },
  { value: 'tokenized', label: 'Pre-tokenized (input_ids, labels)' },
];

/**
 * Whether "train on answers only" changes anything for this format: rows
 * with a prompt and an answer. Plain text trains every token, and
 * pre-tokenized rows say what is trained in their own labels.
 */
export function hasAnswers(format: DatasetReport['format']): boolean {
  return format === 'alpaca' || format === 'chat' || format === 'completion';
}

/** "missing-field" -> "missing field". */
export function problemWords(kind: string): string {
  return kind.replace(/-/g, ' ');
}
