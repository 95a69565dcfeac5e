// The limit messages point at what can be changed: the prompt when it alone
// leaves no room for one token (no budget fits then), else the budget, by the
// flag the user typed or as a number of new tokens.
import { describe, expect, it } from 'vitest';
import { positionLimitProblem } from './position-limit.js';

describe('positionLimitProblem', () => {
  it('is null when the prompt and the budget fit, to the last position', () => {
    expect(positionLimitProblem(250, 6, 256, null)).toBeNull();
    expect(positionLimitProblem(255, 1, 256, '--max-new-tokens')).toBeNull();
  });

  it('asks to shorten the prompt when it leaves no room, naming no budget', () => {
    for (const [prompt, budget] of [[303, 5], [256, 1], [256, 128]]) {
      for (const flag of [null, '--max-new-tokens']) {
        expect(positionLimitProblem(prompt, budget, 256, flag)).toEqual({
          field: 'prompt',
          message: `the prompt (${prompt} tokens) leaves no room for an answer in the model's 256 positions: shorten the prompt`,
        });
      }
    }
  });

  it('gives the room left, by the flag when the user gave one, else in new tokens', () => {
    expect(positionLimitProblem(243, 100, 256, '--max-new-tokens')).toEqual({
      field: 'maxNewTokens',
      message: "prompt (243 tokens) + --max-new-tokens 100 exceeds the model's 256 positions; use --max-new-tokens 13 or less (the most this prompt leaves room for), or shorten the prompt",
    });
    expect(positionLimitProblem(243, 100, 256, null)).toEqual({
      field: 'maxNewTokens',
      message: "the prompt (243 tokens) and 100 new tokens exceed the model's 256 positions; ask for at most 13 new tokens, or shorten the prompt",
    });
  });
});
