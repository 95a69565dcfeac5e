// The try panel's settings are checked before anything is sent.
import { describe, expect, it } from 'vitest';
import { computedOnText, formatGenerationTime, generationStats, MAX_NEW_TOKENS_LIMIT, trySettingsErrors } from './try-panel.svelte.js';

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

describe('generationStats', () => {
  it('counts one token in the singular and shows a fast generation in milliseconds', () => {
    // the e2e run's adapter answer: one token in 4.4 ms
    expect(generationStats({ tokens: 1, seconds: 0.0044, stoppedBy: 'eos' })).toBe('1 token in 4 ms (227.3 tokens/s), stopped by end of sequence');
    expect(generationStats({ tokens: 8, seconds: 0.25, stoppedBy: 'length' })).toBe('8 tokens in 0.25 s (32.0 tokens/s), stopped by the length limit');
    expect(generationStats({ tokens: 0, seconds: 0, stoppedBy: 'eos' })).toBe('0 tokens in < 1 ms, stopped by end of sequence');
  });
  it('switches from ms to seconds at 0.1 s', () => {
    expect(formatGenerationTime(0.0004)).toBe('< 1 ms');
    expect(formatGenerationTime(0.0996)).toBe('100 ms');
    expect(formatGenerationTime(0.1)).toBe('0.10 s');
    expect(formatGenerationTime(12.345)).toBe('12.35 s');
    expect(formatGenerationTime(Number.NaN)).toBe('—');
  });
});

describe('computedOnText', () => {
  it('names the GPU or the CPU and the precision the child computed in', () => {
    expect(computedOnText({ computedOn: { device: 'cuda:0', name: 'NVIDIA H200', precision: 'bf16' } })).toBe('generated on NVIDIA H200 (bf16)');
    expect(computedOnText({ computedOn: { device: 'cpu', name: 'CPU', precision: 'fp32' } })).toBe('generated on CPU (fp32)');
  });
});
