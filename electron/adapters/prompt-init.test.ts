// Prompt tuning's init, computed on the Node side as PEFT's PromptEmbedding does.
import { describe, expect, it } from 'vitest';
import { openModelWithTokenizer } from '../session.js';
import { tinyModel } from '../testing/e2e-fixtures.js';
import { TINY_BOS_ID } from '../testing/tiny-tokenizer.js';
import { embeddingRowsFromWeights, promptInitTable, sampleVocabTokenIds, standardNormals, textInitTokenIds } from './prompt-init.js';

describe('RANDOM: N(0, 1) per element, like nn.Embedding', () => {
  it('has mean 0, variance 1 and normal tails, reproducibly from the seed', () => {
    const x = standardNormals(200_001, 42); // odd: the last pair is cut
    let sum = 0;
    let sq = 0;
    let beyond2 = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 2) beyond2++;
    }
    const mean = sum / x.length;
    const variance = sq / x.length - mean * mean;
    // standard errors: mean 1/sqrt(n) = 0.0022, variance sqrt(2/n) = 0.0032
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.015);
    // P(|z| > 2) = 0.0455
    expect(Math.abs(beyond2 / x.length - 0.0455)).toBeLessThan(0.003);
    expect(standardNormals(10, 42)).toEqual(x.slice(0, 10));
    expect(standardNormals(10, 43)).not.toEqual(x.slice(0, 10));
  });
});

describe('TEXT: the text\'s ids repeated or cut to num_virtual_tokens', () => {
  it('repeats a short text and cuts a long one, as PEFT', () => {
    expect(textInitTokenIds([7, 8, 9], 7)).toEqual([7, 8, 9, 7, 8, 9, 7]);
    expect(textInitTokenIds([7, 8, 9, 10, 11], 3)).toEqual([7, 8, 9]);
    expect(textInitTokenIds([5], 3)).toEqual([5, 5, 5]);
    expect(() => textInitTokenIds([], 3)).toThrow(/gives no tokens/);
  });
});

describe('copying embedding rows', () => {
  it('TEXT and SAMPLE_VOCAB copy exactly the rows of model.embed_tokens.weight (F32 and BF16 files)', async () => {
    for (const dtype of ['F32', 'BF16'] as const) {
      const model = await tinyModel({ seed: 3, dtype });
      const { folder, tokenizer } = await openModelWithTokenizer(model.dir);
      const embed = model.tensors.get('model.embed_tokens.weight')!;
      const h = model.spec.hiddenSize;
      const row = (id: number) => embed.data.subarray(id * h, (id + 1) * h);
      const source = { tokenize: (t: string) => tokenizer.encode(t), embeddingRows: (ids: readonly number[]) => embeddingRowsFromWeights(folder.weights, folder.spec, ids) };

      // tokenizer(text)["input_ids"]: the special tokens the tokenizer adds are part of it
      const ids = tokenizer.encode('Sort:');
      expect(ids[0]).toBe(TINY_BOS_ID);
      const text = await promptInitTable({ numVirtualTokens: ids.length * 2 + 1, init: 'TEXT', initText: 'Sort:' }, folder.spec, 1, source);
      expect(text.tokenIds).toEqual([...ids, ...ids, ids[0]]);
      text.tokenIds!.forEach((id, i) => expect(text.table.subarray(i * h, (i + 1) * h)).toEqual(row(id)));

      const sample = await promptInitTable({ numVirtualTokens: 12, init: 'SAMPLE_VOCAB', initText: null }, folder.spec, 9, source);
      expect(sample.tokenIds).toEqual(sampleVocabTokenIds(folder.spec.vocabSize, 12, 9));
      expect(new Set(sample.tokenIds).size).toBeGreaterThan(6);
      expect(Math.max(...sample.tokenIds!)).toBeLessThan(folder.spec.vocabSize);
      sample.tokenIds!.forEach((id, i) => expect(sample.table.subarray(i * h, (i + 1) * h)).toEqual(row(id)));

      const random = await promptInitTable({ numVirtualTokens: 4, init: 'RANDOM', initText: null }, folder.spec, 9, source);
      expect(random.tokenIds).toBeNull();
      expect(random.table).toEqual(standardNormals(4 * h, 9));
    }
  });

  it('refuses TEXT without text, and ids outside the vocabulary', async () => {
    const model = await tinyModel({ seed: 3 });
    const { folder, tokenizer } = await openModelWithTokenizer(model.dir);
    const source = { tokenize: (t: string) => tokenizer.encode(t), embeddingRows: (ids: readonly number[]) => embeddingRowsFromWeights(folder.weights, folder.spec, ids) };
    await expect(promptInitTable({ numVirtualTokens: 4, init: 'TEXT', initText: null }, folder.spec, 1, source)).rejects.toThrow(/needs --prompt-init-text/);
    await expect(embeddingRowsFromWeights(folder.weights, folder.spec, [320])).rejects.toThrow(/token id 320 is outside the model's vocabulary \(0\.\.319\)/);
  });
});
