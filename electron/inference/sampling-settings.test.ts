// The one place the sampling defaults are decided: given, else the model's
// generation_config.json, else transformers' GenerationConfig defaults; a bad
// file value is refused naming the file, the key and both ways out.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SEED, modelSampling, resolveSampling, SamplingDefaultError, samplingWords, type SamplingDefaults } from './sampling-settings.js';

const qwen: SamplingDefaults = {
  file: '/m/generation_config.json', temperature: 0.7, topK: 20, topP: 0.8, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1.05, noRepeatNgramSize: 0, invalid: {},
  fromFile: ['temperature', 'topK', 'topP', 'repetitionPenalty'],
};
/** transformers' defaults beyond the four settings the older tests name */
const off = { minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, noRepeatNgramSize: 0 };
const byFlag = (key: string) => `pass --${key}`;

describe('resolveSampling', () => {
  it("takes what is given, else the file's, else transformers' defaults (greedy; top-k 50 once sampling); seed 42", () => {
    expect(resolveSampling(null, {}, byFlag)).toEqual({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1, seed: 42, ...off });
    expect(DEFAULT_SEED).toBe(42);
    expect(resolveSampling(qwen, {}, byFlag)).toEqual({ temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42, ...off });
    expect(resolveSampling(qwen, { temperature: 0, repetitionPenalty: 1, seed: 7 }, byFlag)).toEqual({ temperature: 0, topK: 20, topP: 0.8, repetitionPenalty: 1, seed: 7, ...off });
    expect(resolveSampling(null, { temperature: 0.8, topK: 0 }, byFlag)).toEqual({ temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, seed: 42, ...off });
    // min-p and the n-gram ban: the file's (Qwen3-like), else off; given ones win
    const withBoth = { ...qwen, minP: 0.05, noRepeatNgramSize: 3 };
    expect(resolveSampling(withBoth, {}, byFlag)).toMatchObject({ minP: 0.05, noRepeatNgramSize: 3 });
    expect(resolveSampling(withBoth, { minP: 0, noRepeatNgramSize: 0 }, byFlag)).toMatchObject({ minP: 0, noRepeatNgramSize: 0 });
  });

  it('a bad min_p matters only when sampling; a bad no_repeat_ngram_size in greedy decoding too (it bans there as well)', () => {
    const badMinP: SamplingDefaults = { ...qwen, invalid: { minP: 'min_p 1.5 must be a number >= 0 and <= 1' } };
    expect(resolveSampling(badMinP, { temperature: 0 }, byFlag).minP).toBe(0);
    expect(() => resolveSampling(badMinP, {}, byFlag)).toThrow('/m/generation_config.json: min_p 1.5 must be a number >= 0 and <= 1; fix the file (or remove min_p), or pass --minP');
    const badNgram: SamplingDefaults = { ...qwen, invalid: { noRepeatNgramSize: 'no_repeat_ngram_size -1 must be a whole number >= 0' } };
    expect(() => resolveSampling(badNgram, { temperature: 0 }, byFlag)).toThrow('/m/generation_config.json: no_repeat_ngram_size -1 must be a whole number >= 0; fix the file (or remove no_repeat_ngram_size), or pass --noRepeatNgramSize');
    expect(resolveSampling(badNgram, { temperature: 0, noRepeatNgramSize: 2 }, byFlag).noRepeatNgramSize).toBe(2);
  });

  it("typical_p, epsilon_cutoff and eta_cutoff: the file's, else off (1, 0, 0); a bad one matters only when sampling, as transformers adds their warpers only then", () => {
    const recipe = { ...qwen, typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 2e-3 };
    expect(resolveSampling(qwen, {}, byFlag)).toMatchObject({ typicalP: 1, epsilonCutoff: 0, etaCutoff: 0 });
    expect(resolveSampling(recipe, {}, byFlag)).toMatchObject({ typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 2e-3 });
    expect(resolveSampling(recipe, { typicalP: 1, etaCutoff: 0 }, byFlag)).toMatchObject({ typicalP: 1, epsilonCutoff: 3e-4, etaCutoff: 0 });
    const bad: SamplingDefaults = { ...qwen, invalid: { typicalP: 'typical_p 0 must be a number > 0 and <= 1', etaCutoff: 'eta_cutoff 1 must be a number >= 0 and < 1' } };
    expect(resolveSampling(bad, { temperature: 0 }, byFlag)).toMatchObject({ typicalP: 1, etaCutoff: 0 });
    expect(() => resolveSampling(bad, {}, byFlag)).toThrow('/m/generation_config.json: typical_p 0 must be a number > 0 and <= 1; fix the file (or remove typical_p), or pass --typicalP');
    expect(() => resolveSampling(bad, { typicalP: 0.5 }, byFlag)).toThrow('/m/generation_config.json: eta_cutoff 1 must be a number >= 0 and < 1; fix the file (or remove eta_cutoff), or pass --etaCutoff');
    expect(resolveSampling(bad, { typicalP: 0.5, etaCutoff: 0.001 }, byFlag)).toMatchObject({ typicalP: 0.5, etaCutoff: 0.001 });
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
    expect(resolveSampling(bad, { temperature: 0 }, byFlag)).toEqual({ temperature: 0, topK: 20, topP: 1, repetitionPenalty: 1.05, seed: 42, ...off });
    // the penalty applies to greedy decoding too, so a bad one is refused there as well
    expect(() => resolveSampling({ ...qwen, invalid: { repetitionPenalty: 'repetition_penalty 0 must be a number > 0' } }, { temperature: 0 }, byFlag))
      .toThrow('/m/generation_config.json: repetition_penalty 0 must be a number > 0; fix the file (or remove repetition_penalty), or pass --repetitionPenalty');
  });
});

describe('modelSampling', () => {
  it("is what a model generates with when nothing is given: the file's values, transformers' default for a bad one (no error)", () => {
    expect(modelSampling(null)).toEqual({ temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 });
    const qwen3 = { ...qwen, minP: 0.05, typicalP: 0.95, etaCutoff: 1e-3, noRepeatNgramSize: 3 };
    expect(modelSampling(qwen3)).toEqual({ ...resolveSampling(qwen3, {}, byFlag) });
    expect(modelSampling({ ...qwen, topP: 1, invalid: { topP: 'top_p 1.5 must be a number >= 0 and <= 1' } }).topP).toBe(1);
  });
});

describe('samplingWords', () => {
  it('says what chose the tokens: greedy needs no top-k, top-p, min-p or seed', () => {
    expect(samplingWords({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1, seed: 42, ...off })).toBe('greedy decoding');
    expect(samplingWords({ temperature: 0, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42, ...off })).toBe('greedy decoding, repetition penalty 1.05');
    expect(samplingWords({ temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42, ...off })).toBe('sampling at temperature 0.7, top-k 20, top-p 0.8, repetition penalty 1.05, seed 42');
    expect(samplingWords({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 3, ...off })).toBe('sampling at temperature 1, no top-k, no top-p, seed 3');
    // min-p and the n-gram ban are named when on (the ban in greedy decoding too)
    expect(samplingWords({ ...off, temperature: 0, topK: 20, topP: 0.95, repetitionPenalty: 1, seed: 42, minP: 0.05, noRepeatNgramSize: 3 })).toBe('greedy decoding, no repeated 3-grams');
    expect(samplingWords({ ...off, temperature: 0.6, topK: 20, topP: 0.95, repetitionPenalty: 1.05, seed: 42, minP: 0.05, noRepeatNgramSize: 3 }))
      .toBe('sampling at temperature 0.6, top-k 20, top-p 0.95, min-p 0.05, repetition penalty 1.05, no repeated 3-grams, seed 42');
    // typical-p and the cutoffs: named when on, in transformers' order; greedy decoding has none of them
    const all = { temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, seed: 7, minP: 0, typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 2e-3, noRepeatNgramSize: 0 };
    expect(samplingWords(all)).toBe('sampling at temperature 0.8, no top-k, no top-p, typical-p 0.9, epsilon cutoff 0.0003, eta cutoff 0.002, seed 7');
    expect(samplingWords({ ...all, temperature: 0 })).toBe('greedy decoding');
  });
});
