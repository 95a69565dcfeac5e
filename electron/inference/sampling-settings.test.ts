// The one place the sampling defaults are decided: given, else the model's
// generation_config.json, else transformers' GenerationConfig defaults; a bad
// file value is refused naming the file, the key and both ways out.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SEED, resolveSampling, SamplingDefaultError, samplingWords, type SamplingDefaults } from './sampling-settings.js';

const qwen: SamplingDefaults = { file: '/m/generation_config.json', temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, invalid: {} };
const byFlag = (key: string) => `pass --${key}`;

describe('resolveSampling', () => {
  it("takes what is given, else the file's, else transformers' defaults (greedy; top-k 50 once sampling); seed 42", () => {
    expect(resolveSampling(null, {}, byFlag)).toEqual({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1, seed: 42 });
    expect(DEFAULT_SEED).toBe(42);
    expect(resolveSampling(qwen, {}, byFlag)).toEqual({ temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42 });
    expect(resolveSampling(qwen, { temperature: 0, repetitionPenalty: 1, seed: 7 }, byFlag)).toEqual({ temperature: 0, topK: 20, topP: 0.8, repetitionPenalty: 1, seed: 7 });
    expect(resolveSampling(null, { temperature: 0.8, topK: 0 }, byFlag)).toEqual({ temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, seed: 42 });
  });

  it("refuses a bad file value it would use, naming the file and the key, and how to give it instead", () => {
    const bad: SamplingDefaults = { ...qwen, invalid: { topP: 'top_p 1.5 must be a number >= 0 and <= 1' } };
    let error: unknown;
    try {
      resolveSampling(bad, {}, byFlag);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SamplingDefaultError);
    expect((error as SamplingDefaultError).key).toBe('topP');
    expect((error as Error).message).toBe('/m/generation_config.json: top_p 1.5 must be a number >= 0 and <= 1; fix the file (or remove top_p), or pass --topP');
    // given instead, or not used at all (greedy decoding has no top-p): no error
    expect(resolveSampling(bad, { topP: 0.9 }, byFlag).topP).toBe(0.9);
    expect(resolveSampling(bad, { temperature: 0 }, byFlag)).toEqual({ temperature: 0, topK: 20, topP: 1, repetitionPenalty: 1.05, seed: 42 });
    // the penalty applies to greedy decoding too, so a bad one is refused there as well
    expect(() => resolveSampling({ ...qwen, invalid: { repetitionPenalty: 'repetition_penalty 0 must be a number > 0' } }, { temperature: 0 }, byFlag))
      .toThrow('/m/generation_config.json: repetition_penalty 0 must be a number > 0; fix the file (or remove repetition_penalty), or pass --repetitionPenalty');
  });
});

describe('samplingWords', () => {
  it('says what chose the tokens: greedy needs no top-k, top-p or seed', () => {
    expect(samplingWords({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1, seed: 42 })).toBe('greedy decoding');
    expect(samplingWords({ temperature: 0, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42 })).toBe('greedy decoding, repetition penalty 1.05');
    expect(samplingWords({ temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42 })).toBe('sampling at temperature 0.7, top-k 20, top-p 0.8, repetition penalty 1.05, seed 42');
    expect(samplingWords({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 3 })).toBe('sampling at temperature 1, no top-k, no top-p, seed 3');
  });
});
