import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelTokenizer } from '../models/tokenizer.js';
import { TINY_BOS_ID, TINY_EOS_ID } from '../testing/tiny-tokenizer.js';
import { tempDir, tinyModel } from '../testing/e2e-fixtures.js';
import { countTrainedTokens, DataError, loadJsonl, parseJsonl, type TrainingEncoder } from './data.js';

// A character-level stand-in tokenizer with a BOS rule, so expected ids can be
// written down by hand: BOS = 1, EOS = 2, 'a' = 3, 'b' = 4, ...
const charTokenizer: TrainingEncoder = {
  encodeForTraining: (text) => [1, ...Array.from(text, (c) => c.charCodeAt(0) - 94), 2],
};
const opts = { seqLen: 16, vocabSize: 40 };

describe('JSONL data', () => {
  it('tokenizes text rows with the tokenizer', () => {
    const ex = parseJsonl('{"text": "ab"}\n\n{"text": "c", "id": 7}\n', 'd.jsonl', charTokenizer, opts);
    expect(ex.map((e) => Array.from(e.inputIds))).toEqual([
      [1, 3, 4, 2],
      [1, 5, 2],
    ]);
    expect(ex[0].labels).toEqual(ex[0].inputIds);
    expect(ex.map((e) => e.source)).toEqual(['d.jsonl:1', 'd.jsonl:3']);
  });

  it('takes pre-tokenized rows, labels defaulting to input_ids', () => {
    const text = '{"input_ids": [5, 6, 7]}\n{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}';
    const ex = parseJsonl(text, 'f', charTokenizer, opts);
    expect(Array.from(ex[0].labels)).toEqual([5, 6, 7]);
    expect(Array.from(ex[1].labels)).toEqual([-100, 6, 7]);
    expect(countTrainedTokens(ex[1].labels)).toBe(2);
    expect(countTrainedTokens([-100, -100, 7])).toBe(1);
  });

  it('truncates to seqLen', () => {
    const ex = parseJsonl('{"input_ids": [1,2,3,4,5], "labels": [1,2,-100,4,5]}', 'f', charTokenizer, { seqLen: 3, vocabSize: 40 });
    expect(Array.from(ex[0].inputIds)).toEqual([1, 2, 3]);
    expect(Array.from(ex[0].labels)).toEqual([1, 2, -100]);
  });

  const bad: [string, RegExp][] = [
    ['{"text": "ok"}\n{"text": 5}', /^f\.jsonl:2: "text" must be a string/],
    ['{"text": "ok"}\n{broken', /^f\.jsonl:2: not valid JSON/],
    ['[1,2]', /^f\.jsonl:1: expected a JSON object/],
    ['{"prompt": "x", "completion": "y"}', /^f\.jsonl:1: needs "text" or "input_ids" \(keys found: prompt, completion\)/],
    ['{"input_ids": [1, 2], "labels": [1]}', /^f\.jsonl:1: "labels" has 1 entries but "input_ids" has 2/],
    ['{"input_ids": [1, 2.5]}', /^f\.jsonl:1: "input_ids"\[1\] is 2\.5, not an integer/],
    ['{"input_ids": [1, 40]}', /^f\.jsonl:1: "input_ids"\[1\] = 40 is outside the vocabulary \[0, 40\)/],
    ['{"input_ids": [1, -100]}', /"input_ids"\[1\] = -100 is outside/],
    ['{"input_ids": [1], "labels": [-5]}', /"labels"\[0\] = -5 is outside the vocabulary \[0, 40\) \(or -100 to skip\)/],
    ['{"input_ids": []}', /"input_ids" is empty/],
    ['{"text": "a", "input_ids": [1]}', /has both "text" and "input_ids"/],
    ['{"text": "a", "labels": [1]}', /"labels" goes with "input_ids"/],
    ['\n\n', /^f\.jsonl: no examples/],
  ];
  for (const [text, message] of bad) {
    it(`rejects ${JSON.stringify(text).slice(0, 40)} with a located message`, () => {
      expect(() => parseJsonl(text, 'f.jsonl', charTokenizer, opts)).toThrow(message);
      expect(() => parseJsonl(text, 'f.jsonl', charTokenizer, opts)).toThrow(DataError);
    });
  }

  it('text rows with a real tokenizer: BOS from its post-processor, the text, then EOS', async () => {
    const model = await tinyModel();
    const tokenizer = await ModelTokenizer.load(model.dir);
    const text = 'the cat sat on the mat';
    const [ex] = parseJsonl(JSON.stringify({ text }), 'f', tokenizer, { seqLen: 64, vocabSize: 320 });
    const plain = tokenizer.encode(text, { addSpecialTokens: false });
    expect(plain.length).toBeGreaterThan(3);
    expect(Array.from(ex.inputIds)).toEqual([TINY_BOS_ID, ...plain, TINY_EOS_ID]);
    expect(tokenizer.decode(plain)).toBe(text);
    const [cut] = parseJsonl(JSON.stringify({ text }), 'f', tokenizer, { seqLen: 3, vocabSize: 320 });
    expect(Array.from(cut.inputIds)).toEqual([TINY_BOS_ID, plain[0], plain[1]]);
    expect(() => parseJsonl(JSON.stringify({ text }), 'f', tokenizer, { seqLen: 64, vocabSize: 100 })).toThrow(/f:1: the tokenizer gave id \d+, outside the model's vocabulary \[0, 100\)/);
  });

  it('reads files and explains a missing one', () => {
    const dir = tempDir('data');
    const file = join(dir, 'train.jsonl');
    writeFileSync(file, '{"text": "ab"}\r\n{"text": "b"}\r\n');
    expect(loadJsonl(file, charTokenizer, opts).map((e) => e.inputIds.length)).toEqual([4, 3]);
    expect(() => loadJsonl(join(dir, 'nope.jsonl'), charTokenizer, opts)).toThrow(/cannot read data file .*nope\.jsonl: no such file/);
    expect(() => loadJsonl(dir, charTokenizer, opts)).toThrow(/is a directory/);
  });
});

describe('countTrainedTokens with packed segments', () => {
  it('does not count the first token of a document (no prediction across the seam)', async () => {
    const { countTrainedTokens } = await import('./data.js');
    const labels = [1, 2, 3, 4, -100, 6];
    expect(countTrainedTokens(labels)).toBe(4);
    // documents [1 2 3] [4 -100 6]: 2, 3 in the first; 6 in the second (4 starts it)
    expect(countTrainedTokens(labels, [0, 0, 0, 1, 1, 1])).toBe(3);
  });
});
