import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyModel } from '../testing/tiny-model.js';
import { bytesToUnicode, FIRST_BYTE_ID, MIN_TINY_VOCAB } from '../testing/tiny-tokenizer.js';
import { ModelTokenizer, TokenizerError } from './tokenizer.js';

let root: string;
let tok: ModelTokenizer;
let modelDir: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tok-'));
  modelDir = join(root, 'llama');
  await writeTinyModel(modelDir, { vocab: 320 });
  tok = await ModelTokenizer.load(modelDir);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The bytes a sequence of byte-level tokens stands for, from the GPT-2 byte table. */
function bytesOfTokens(ids: number[]): number[] {
  const charToByte = new Map(bytesToUnicode().map((c, b) => [c, b]));
  return ids.flatMap((id) => Array.from(tok.idToToken(id)!, (c) => charToByte.get(c)!));
}

describe('ModelTokenizer on the tiny byte-level BPE tokenizer', () => {
  it('has the vocabulary size of config.json and the special ids of tokenizer_config.json', () => {
    expect(tok.vocabSize).toBe(320);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2]);
    expect([tok.bosToken, tok.eosToken, tok.padToken]).toEqual(['<s>', '</s>', '<pad>']);
    expect(tok.isSpecial(1)).toBe(true);
    expect(tok.isSpecial(FIRST_BYTE_ID + 65)).toBe(false);
  });

  it('adds BOS because the post-processor does, and round-trips text', () => {
    for (const text of ['Hello world', 'The model reads the text.', ' leading and  double spaces ', 'héllo wörld 🙂 日本', 'a\nb\tc']) {
      const ids = tok.encode(text);
      expect(ids[0]).toBe(0);
      expect(ids.slice(1).every((id) => id >= FIRST_BYTE_ID && id < 320)).toBe(true);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      expect(tok.decode(ids)).toBe(`<s>${text}`);
      // the tokens spell out exactly the UTF-8 bytes of the text
      expect(bytesOfTokens(ids.slice(1))).toEqual(Array.from(new TextEncoder().encode(text)));
      expect(tok.encode(text, { addSpecialTokens: false })).toEqual(ids.slice(1));
    }
  });

  it('maps an unmerged byte to its byte token', () => {
    expect(tok.encode('\u0001', { addSpecialTokens: false })).toEqual([FIRST_BYTE_ID + 1]);
    expect(tok.encode('~', { addSpecialTokens: false })).toEqual([FIRST_BYTE_ID + 0x7e]);
  });

  it('merges frequent words into fewer tokens than bytes', () => {
    const text = 'the model and the adapter';
    expect(tok.encode(text, { addSpecialTokens: false }).length).toBeLessThan(text.length / 2);
  });

  it('encodeForTraining appends EOS once', () => {
    expect(tok.encodeForTraining('hi')).toEqual([...tok.encode('hi'), 1]);
    expect(tok.encodeForTraining('hi</s>')).toEqual([...tok.encode('hi'), 1]);
  });

  it('treats special-token text in the input as the special token (as transformers does)', () => {
    expect(tok.encode('a</s>b', { addSpecialTokens: false })).toEqual([...tok.encode('a', { addSpecialTokens: false }), 1, ...tok.encode('b', { addSpecialTokens: false })]);
  });

  it('decodes an empty list to an empty string', () => {
    expect(tok.decode([])).toBe('');
  });

  it('is the same for every architecture and at the minimum vocabulary', async () => {
    const dir = join(root, 'qwen3-min');
    await writeTinyModel(dir, { arch: 'Qwen3ForCausalLM', vocab: MIN_TINY_VOCAB });
    const small = await ModelTokenizer.load(dir);
    expect(small.vocabSize).toBe(MIN_TINY_VOCAB);
    const ids = small.encode('the the the');
    expect(ids).toEqual([0, ...Array.from(new TextEncoder().encode('the the the'), (b) => FIRST_BYTE_ID + b)]);
    expect(small.decode(ids, { skipSpecialTokens: true })).toBe('the the the');
    await expect(writeTinyModel(join(root, 'too-small'), { vocab: 200 })).rejects.toThrow(/at least 259/);
  });
});

describe('ModelTokenizer.load', () => {
  it('reads special tokens written as AddedToken objects', async () => {
    const dir = join(root, 'objects');
    await writeTinyModel(dir);
    const configPath = join(dir, 'tokenizer_config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    config.eos_token = { __type: 'AddedToken', content: '</s>', lstrip: false, normalized: false, rstrip: false, single_word: false };
    config.pad_token = null;
    await writeFile(configPath, JSON.stringify(config));
    const t = await ModelTokenizer.load(dir);
    expect(t.eosId).toBe(1);
    expect(t.padId).toBeNull();
  });

  it('falls back to config.json eos_token_id when tokenizer_config.json has none', async () => {
    const dir = join(root, 'fallback');
    await writeTinyModel(dir);
    await unlink(join(dir, 'tokenizer_config.json'));
    const t = await ModelTokenizer.load(dir);
    expect(t.eosId).toBe(1);
    expect(t.bosId).toBeNull();
    expect(t.encode('x')[0]).toBe(0); // BOS still comes from the post-processor
  });

  it('explains a missing or broken tokenizer.json', async () => {
    const dir = join(root, 'broken');
    await writeTinyModel(dir);
    await writeFile(join(dir, 'tokenizer.json'), '{"model": ');
    await expect(ModelTokenizer.load(dir)).rejects.toThrow(/tokenizer\.json: is not valid JSON/);
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'Mystery' }, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null }));
    await expect(ModelTokenizer.load(dir)).rejects.toThrow(/tokenizer\.json: cannot be loaded \(.*Mystery.*\)/);
    await unlink(join(dir, 'tokenizer.json'));
    const err = await ModelTokenizer.load(dir).catch((e) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect(err.message).toMatch(/tokenizer\.json: cannot be read \(ENOENT\)/);
  });
});

describe('token offsets and special tokens (for exact masks)', () => {
  it('spells byte-level tokens back to their UTF-8 byte offsets', () => {
    const text = 'héllo wörld 🙂 the model';
    const ids = tok.encode(text, { addSpecialTokens: false });
    const starts = tok.tokenByteStarts(text, ids)!;
    expect(tok.pieceScheme).toBe('byte-level');
    const bytes = new TextEncoder().encode(text);
    expect(starts[ids.length]).toBe(bytes.length);
    // each token's bytes, from the GPT-2 table, are the text's bytes at its offset
    ids.forEach((id, i) => expect(Array.from(bytes.slice(starts[i], starts[i + 1]))).toEqual(bytesOfTokens([id])));
    // ids that are not the text's tokenization are refused
    expect(tok.tokenByteStarts(text + 'x', ids)).toBeNull();
  });

  it('counts added special tokens by their text', () => {
    const text = 'a</s>b';
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids).toContain(1);
    expect(Array.from(tok.tokenByteStarts(text, ids)!)).toEqual([0, 1, 5, 6]);
  });

  it('knows what the post-processor adds around a text and which tokens are special', () => {
    expect(tok.specialTokensAround()).toEqual({ prefix: [0], suffix: [] });
    expect(tok.specialTokenTexts().sort()).toEqual(['</s>', '<pad>', '<s>']);
  });
});

describe('token offsets of a SentencePiece-style (metaspace, byte fallback) tokenizer', () => {
  it('maps "▁" to a space, <0xNN> to a byte, and ignores the prepended "▁"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-sp-'));
    const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
    for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
    for (const piece of ['▁', 'h', 'i', '▁h', '▁hi', 'a']) vocab[piece] = Object.keys(vocab).length;
    const json = {
      version: '1.0',
      added_tokens: [0, 1, 2].map((id) => ({ id, content: ['<unk>', '<s>', '</s>'][id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
      model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges: ['▁ h', '▁h i'] },
    };
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }));
    const sp = await ModelTokenizer.load(dir);
    expect(sp.pieceScheme).toBe('metaspace');
    const text = 'hi a é';
    const ids = sp.encode(text, { addSpecialTokens: false });
    // ▁hi ▁ a ▁ <0xC3> <0xA9>: "é" has no piece, so its two bytes fall back
    expect(ids).toEqual([vocab['▁hi'], vocab['▁'], vocab.a, vocab['▁'], vocab['<0xC3>'], vocab['<0xA9>']]);
    // the prepended "▁" belongs to no character: "hi" starts at byte 0
    expect(Array.from(sp.tokenByteStarts(text, ids)!)).toEqual([0, 2, 3, 4, 5, 6, 7]);
  });
});
