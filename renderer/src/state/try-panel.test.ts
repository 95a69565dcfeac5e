// The try panel's settings are checked before anything is sent.
import { describe, expect, it } from 'vitest';
import { MAX_NEW_TOKENS_LIMIT, trySettingsErrors } from './try-panel.svelte.js';

const good = { prompt: 'Hello', maxNewTokens: 64, temperature: 0, seed: 0 };

describe('trySettingsErrors', () => {
  it('accepts sensible settings', () => {
    expect(trySettingsErrors(good)).toEqual({});
    expect(trySettingsErrors({ ...good, maxNewTokens: MAX_NEW_TOKENS_LIMIT, temperature: 1.3, seed: 7 })).toEqual({});
  });
  it('names each field that is wrong', () => {
    expect(trySettingsErrors({ prompt: '  ', maxNewTokens: 0, temperature: -0.5, seed: 1.5 })).toEqual({
      prompt: 'Write a prompt.',
      maxNewTokens: 'A whole number from 1 to 2048.',
      temperature: 'A number from 0 (greedy) up.',
      seed: 'A whole number, 0 or more.',
    });
    // an emptied number box binds to null
    expect(trySettingsErrors({ ...good, maxNewTokens: null as unknown as number })).toEqual({ maxNewTokens: 'A whole number from 1 to 2048.' });
    expect(trySettingsErrors({ ...good, maxNewTokens: 2049 })).toEqual({ maxNewTokens: 'A whole number from 1 to 2048.' });
  });
});
