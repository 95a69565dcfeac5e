// Whether a prompt and a new-token budget fit the positions a model has (its
// max_position_embeddings, less an adapter's virtual tokens), and what to
// change when they do not: the prompt itself when it leaves no room for even
// one token (no budget can fix that), else the budget, named as the user gave
// it (the command line's flag, or the Try page's field).

export interface PositionLimitProblem {
  /** what to change: the prompt, or the new-token budget */
  field: 'prompt' | 'maxNewTokens';
  message: string;
}

/**
 * Why `promptTokens` and `maxNewTokens` more do not fit in `positions`, or
 * null. `flag`: the command-line flag the budget came from ('--max-new-tokens');
 * null words it as a number of new tokens (the Try page, or a budget the user
 * did not give).
 */
export function positionLimitProblem(promptTokens: number, maxNewTokens: number, positions: number, flag: string | null): PositionLimitProblem | null {
  if (promptTokens + maxNewTokens <= positions) return null;
  const room = positions - promptTokens;
  if (room < 1) {
    return { field: 'prompt', message: `the prompt (${promptTokens} tokens) leaves no room for an answer in the model's ${positions} positions: shorten the prompt` };
  }
  if (flag !== null) {
    return { field: 'maxNewTokens', message: `prompt (${promptTokens} tokens) + ${flag} ${maxNewTokens} exceeds the model's ${positions} positions; use ${flag} ${room} or less (the most this prompt leaves room for), or shorten the prompt` };
  }
  return { field: 'maxNewTokens', message: `the prompt (${promptTokens} tokens) and ${maxNewTokens} new tokens exceed the model's ${positions} positions; ask for at most ${room} new tokens, or shorten the prompt` };
}
