// One row from parsed value to tokens and labels, in a given format. Shared
// by the loader and the mask preview so that the preview shows exactly what
// training gets. Throws RowError for a row that cannot be used.
// A change to the tokens, labels or row errors this gives needs token-cache.ts CACHE_VERSION bumped.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { parseAlpaca, renderAlpaca } from './formats/alpaca.js';
import { parseChatRow, renderConversation } from './formats/chat.js';
import { renderCompletion } from './formats/completion.js';
import type { FormattedRow } from './formats/row.js';
import { renderText } from './formats/text.js';
import { tokenizedRow } from './formats/tokenized.js';
import { tokenizeRendered, type TokenizedRow } from './mask.js';
import type { DatasetFormat } from './options.js';
import { RowError } from './problems.js';

export interface PreparedRow extends TokenizedRow {
  layout: string;
  /** the rendered text (absent for pre-tokenized rows) */
  text?: string;
  /** the chat template left the row's system message out (see formats/chat.ts) */
  systemDropped?: boolean;
}

/** completionOnly false: every token is trained, so a chat row's turns need not be located. */
export function formatRow(value: unknown, format: DatasetFormat, tokenizer: ModelTokenizer, vocabSize: number, completionOnly = true): FormattedRow {
  switch (format) {
    case 'alpaca':
      return renderAlpaca(parseAlpaca(value), tokenizer);
    case 'chat': {
      const { messages, trainFrom } = parseChatRow(value);
      return renderConversation(messages, tokenizer, completionOnly, trainFrom);
    }
    case 'completion':
      return renderCompletion(value);
    case 'text':
      return renderText(value);
    case 'tokenized':
      return tokenizedRow(value, vocabSize);
  }
}

export function prepareRow(value: unknown, format: DatasetFormat, tokenizer: ModelTokenizer, completionOnly: boolean, vocabSize: number): PreparedRow {
  const formatted = formatRow(value, format, tokenizer, vocabSize, completionOnly);
  if (formatted.kind === 'tokens') return { inputIds: formatted.inputIds, labels: formatted.labels, layout: formatted.layout };
  const tokens = tokenizeRendered(tokenizer, formatted, completionOnly);
  const outside = tokens.inputIds.find((id) => id < 0 || id >= vocabSize);
  if (outside !== undefined) {
    throw new RowError('vocabulary', `the tokenizer gave id ${outside}, outside the model's vocabulary [0, ${vocabSize}); the tokenizer does not belong to this model`);
  }
  return { ...tokens, layout: formatted.layout, text: formatted.text, ...(formatted.systemDropped ? { systemDropped: true } : {}) };
}
