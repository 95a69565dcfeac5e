import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ignoredKeysNotice, readGenerationConfig } from './generation-config.js';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gencfg-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function folderWith(text: string | null): Promise<string> {
  const dir = await mkdtemp(join(root, `f${n++}-`));
  if (text !== null) await writeFile(join(dir, 'generation_config.json'), text);
  return dir;
}

describe('readGenerationConfig', () => {
  it('is null for a missing, unparsable or non-object file', async () => {
    for (const text of [null, '{broken', 'null', '[1, 2]']) expect(await readGenerationConfig(await folderWith(text))).toBeNull();
  });

  it("takes transformers' GenerationConfig defaults: greedy unless do_sample, then top_k 50, top_p 1, no repetition penalty", async () => {
    const read = async (text: string) => {
      const dir = await folderWith(text);
      const c = await readGenerationConfig(dir);
      expect(c?.file).toBe(join(dir, 'generation_config.json'));
      return { temperature: c?.temperature, topK: c?.topK, topP: c?.topP, repetitionPenalty: c?.repetitionPenalty, invalid: c?.invalid };
    };
    // do_sample false or absent: greedy; its top_p / top_k still apply once a temperature is given, as in transformers
    expect(await read('{"temperature": 0.6, "top_p": 0.9}')).toEqual({ temperature: 0, topK: 50, topP: 0.9, repetitionPenalty: 1, invalid: {} });
    expect(await read('{"do_sample": true, "temperature": 0.6, "top_p": 0.9}')).toEqual({ temperature: 0.6, topK: 50, topP: 0.9, repetitionPenalty: 1, invalid: {} });
    expect(await read('{"do_sample": true}')).toEqual({ temperature: 1, topK: 50, topP: 1, repetitionPenalty: 1, invalid: {} });
    // Qwen2.5-Instruct's file
    expect(await read('{"do_sample": true, "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8, "top_k": 20}'))
      .toEqual({ temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, invalid: {} });
    // null is transformers' None: that warper is not added
    expect(await read('{"do_sample": true, "top_k": null, "top_p": null, "temperature": null, "repetition_penalty": null}'))
      .toEqual({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, invalid: {} });
  });

  it('keeps a value transformers would refuse with why, naming the key (a string is no number)', async () => {
    const c = await readGenerationConfig(await folderWith('{"do_sample": true, "temperature": "0.7", "top_p": 1.5, "top_k": 2.5, "repetition_penalty": 0}'));
    expect(c?.invalid).toEqual({
      temperature: 'temperature "0.7" must be a number >= 0',
      topP: 'top_p 1.5 must be a number >= 0 and <= 1',
      topK: 'top_k 2.5 must be a whole number >= 0',
      repetitionPenalty: 'repetition_penalty 0 must be a number > 0',
    });
    // a temperature that greedy decoding never uses is not checked
    expect((await readGenerationConfig(await folderWith('{"temperature": -1}')))?.invalid).toEqual({});
  });

  it('reads min_p and no_repeat_ngram_size (None and 0: off), keeps a bad one with why, and says which settings the file gives', async () => {
    const read = async (text: string) => readGenerationConfig(await folderWith(text));
    const qwen3 = await read('{"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.95, "min_p": 0.05, "no_repeat_ngram_size": 3}');
    expect({ minP: qwen3?.minP, noRepeatNgramSize: qwen3?.noRepeatNgramSize, invalid: qwen3?.invalid }).toEqual({ minP: 0.05, noRepeatNgramSize: 3, invalid: {} });
    expect(qwen3?.fromFile).toEqual(['temperature', 'topK', 'topP', 'minP', 'noRepeatNgramSize']);
    const absent = await read('{"eos_token_id": 2}');
    expect({ minP: absent?.minP, noRepeatNgramSize: absent?.noRepeatNgramSize, fromFile: absent?.fromFile }).toEqual({ minP: 0, noRepeatNgramSize: 0, fromFile: [] });
    const none = await read('{"min_p": null, "no_repeat_ngram_size": 0, "do_sample": false}');
    expect({ minP: none?.minP, noRepeatNgramSize: none?.noRepeatNgramSize, fromFile: none?.fromFile }).toEqual({ minP: 0, noRepeatNgramSize: 0, fromFile: ['temperature', 'minP', 'noRepeatNgramSize'] });
    const bad = await read('{"min_p": 1.5, "no_repeat_ngram_size": 2.5, "top_p": 0.9}');
    expect(bad?.invalid).toEqual({ minP: 'min_p 1.5 must be a number >= 0 and <= 1', noRepeatNgramSize: 'no_repeat_ngram_size 2.5 must be a whole number >= 0' });
    expect({ minP: bad?.minP, noRepeatNgramSize: bad?.noRepeatNgramSize, fromFile: bad?.fromFile }).toEqual({ minP: 0, noRepeatNgramSize: 0, fromFile: ['topP'] });
  });

  it('reads typical_p, epsilon_cutoff and eta_cutoff (None, 1 and 0: off), keeps a value their warpers refuse with why', async () => {
    const read = async (text: string) => readGenerationConfig(await folderWith(text));
    const recipe = await read('{"do_sample": true, "typical_p": 0.9, "epsilon_cutoff": 0.0003, "eta_cutoff": 0.002}');
    expect({ typicalP: recipe?.typicalP, epsilonCutoff: recipe?.epsilonCutoff, etaCutoff: recipe?.etaCutoff, invalid: recipe?.invalid }).toEqual({ typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 2e-3, invalid: {} });
    expect(recipe?.fromFile).toEqual(['temperature', 'typicalP', 'epsilonCutoff', 'etaCutoff']);
    // absent, None, or the values older transformers wrote into every file: off
    for (const text of ['{}', '{"typical_p": null, "epsilon_cutoff": null, "eta_cutoff": null}', '{"typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}']) {
      const c = await read(text);
      expect({ typicalP: c?.typicalP, epsilonCutoff: c?.epsilonCutoff, etaCutoff: c?.etaCutoff, invalid: c?.invalid }, text).toEqual({ typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, invalid: {} });
    }
    // TypicalLogitsWarper: > 0 and < 1 (1: none); Epsilon / EtaLogitsWarper: > 0 and < 1 (0: none)
    const bad = await read('{"typical_p": 0, "epsilon_cutoff": 1, "eta_cutoff": -0.001}');
    expect(bad?.invalid).toEqual({
      typicalP: 'typical_p 0 must be a number > 0 and <= 1',
      epsilonCutoff: 'epsilon_cutoff 1 must be a number >= 0 and < 1',
      etaCutoff: 'eta_cutoff -0.001 must be a number >= 0 and < 1',
    });
    expect({ typicalP: bad?.typicalP, epsilonCutoff: bad?.epsilonCutoff, etaCutoff: bad?.etaCutoff, fromFile: bad?.fromFile }).toEqual({ typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, fromFile: [] });
  });

  it('lists the keys transformers applies and generation does not, only when set to something that acts', async () => {
    const dir = await folderWith('{"no_repeat_ngram_size": 3, "min_p": 0.05, "typical_p": 0.9, "epsilon_cutoff": 3e-4, "eta_cutoff": 2e-3, "num_beams": 1, "suppress_tokens": [], "min_new_tokens": 2, "bad_words_ids": null, "guidance_scale": 1}');
    const c = await readGenerationConfig(dir);
    // min_p, no_repeat_ngram_size, typical_p and the cutoffs are applied now: not listed
    expect(c?.ignored).toEqual(['min_new_tokens 2']);
    expect(ignoredKeysNotice(c)).toBe(`${join(dir, 'generation_config.json')}: sets min_new_tokens 2, which transformers' generate() applies and PEFT Studio does not, so its answers can differ from model.generate()'s`);
    expect(ignoredKeysNotice(await readGenerationConfig(await folderWith('{"no_repeat_ngram_size": 3, "min_p": 0.05, "typical_p": 0.5, "eta_cutoff": 0.01}')))).toBeNull();
    expect(ignoredKeysNotice(await readGenerationConfig(await folderWith('{"num_beams": 1, "typical_p": 1}')))).toBeNull();
    expect(ignoredKeysNotice(null)).toBeNull();
  });

  it('reads eos_token_id as one id or a list, and ignores anything else', async () => {
    expect((await readGenerationConfig(await folderWith('{"eos_token_id": 7}')))?.eosTokenIds).toEqual([7]);
    expect((await readGenerationConfig(await folderWith('{"eos_token_id": [7, 9]}')))?.eosTokenIds).toEqual([7, 9]);
    for (const bad of ['[]', '"7"', '[7, 1.5]', 'null']) {
      expect((await readGenerationConfig(await folderWith(`{"eos_token_id": ${bad}}`)))?.eosTokenIds).toBeNull();
    }
  });
});
