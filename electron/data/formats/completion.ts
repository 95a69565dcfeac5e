// Completion rows: {"prompt", "completion"}. The text is prompt + completion
// exactly as written (no separator is added: put the space or line break you
// want at the end of the prompt or the start of the completion), with the
// tokenizer's BOS before it and EOS after it. The completion and EOS are
// trained. An empty prompt is allowed; an empty completion is not.
// A change to the tokens, labels or row errors this gives needs ../token-cache.ts CACHE_VERSION bumped.
import { RowError } from '../problems.js';
import { asObject, requireString, type Fields, type RenderedRow } from './row.js';

export function isCompletionRow(row: Fields): boolean {
  return 'prompt' in row && 'completion' in row;
}

export function renderCompletion(value: unknown): RenderedRow {
  const row = asObject(value);
  if (Array.isArray(row.prompt) || Array.isArray(row.completion)) {
    throw new RowError('wrong-type', '"prompt" and "completion" are lists of messages (TRL\'s conversational prompt / completion): read the file in the chat format, which takes them');
  }
  const prompt = requireString(row, 'prompt', true);
  const completion = requireString(row, 'completion');
  const text = prompt + completion;
  return { kind: 'rendered', text, trainSpans: [[prompt.length, text.length]], addSpecialTokens: true, appendEos: true, layout: 'prompt + completion' };
}
