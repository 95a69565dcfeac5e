// Chat rendering with the real Llama 3 template and tokenizer, and the
// exactness of the completion-only mask. Expected ids come from
// tokenizer.json's vocabulary by hand (the pieces the Llama 3 pre-tokenizer
// splits these words into), not from the tokenizer library.
import { beforeAll, describe, expect, it } from 'vitest';
import { IGNORE_INDEX } from '../training/data.js';
import { chatTemplateOf } from './chat-template.js';
import { parseConversation, renderConversation } from './formats/chat.js';
import { renderAlpaca } from './formats/alpaca.js';
import { renderCompletion } from './formats/completion.js';
import { tokenizeRendered } from './mask.js';
import { prepareRow } from './prepare-row.js';
import { formatOfRow } from './detect-format.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { demoModelDir } from '../models/hf-cache-fixture.js';
import { LLAMA3_VOCAB, llama3Ids, loadLlama3 } from './testing/llama3.js';

let tok: ModelTokenizer;
let id: (piece: string) => number;
beforeAll(async () => {
  tok = await loadLlama3();
  id = llama3Ids();
});

const M = IGNORE_INDEX;
/** [piece, trained] pairs -> expected ids and labels */
function expected(pairs: [string, boolean][]): { ids: number[]; labels: number[] } {
  const ids = pairs.map(([p]) => id(p));
  return { ids, labels: pairs.map(([, t], i) => (t ? ids[i] : M)) };
}
const header = (role: string): [string, boolean][] => [['<|start_header_id|>', false], [role, false], ['<|end_header_id|>', false], ['ĊĊ', false]];

describe('chat rows with the Llama 3 chat template', () => {
  const conversation = [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: 'Tell me a joke' },
    { role: 'assistant', content: 'No.' },
  ];

  it('renders the conversation as the template text says', () => {
    const text = chatTemplateOf(tok).render(parseConversation({ messages: conversation }), false);
    expect(chatTemplateOf(tok).source).toBe('model');
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nTell me a joke<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nNo.<|eot_id|>' +
        // this template always ends with an assistant header (it ignores add_generation_prompt)
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('trains exactly the assistant turns and their <|eot_id|>, every turn (completion-only)', () => {
    const row = prepareRow({ messages: conversation }, 'chat', tok, true, LLAMA3_VOCAB);
    const want = expected([
      ['<|begin_of_text|>', false], ...header('system'), ['You', false], ['Ġare', false], ['Ġhelpful', false], ['.', false], ['<|eot_id|>', false],
      ...header('user'), ['Hi', false], ['Ġthere', false], ['<|eot_id|>', false],
      ...header('assistant'), ['Hello', true], ['!', true], ['ĠHow', true], ['Ġcan', true], ['ĠI', true], ['Ġhelp', true], ['?', true], ['<|eot_id|>', true],
      ...header('user'), ['Tell', false], ['Ġme', false], ['Ġa', false], ['Ġjoke', false], ['<|eot_id|>', false],
      ...header('assistant'), ['No', true], ['.', true], ['<|eot_id|>', true],
      ...header('assistant'),
    ]);
    expect(row.inputIds).toEqual(want.ids);
    expect(row.labels).toEqual(want.labels);
    // the same ids as tokenizing the rendered string in one go
    expect(row.inputIds).toEqual(tok.encode(row.text!, { addSpecialTokens: false }));
  });

  it('trains every token when completion-only is off', () => {
    const row = prepareRow({ messages: conversation }, 'chat', tok, false, LLAMA3_VOCAB);
    expect(row.labels).toEqual(row.inputIds);
  });

  it('reads ShareGPT conversations (human/gpt/system) as the same conversation', () => {
    const shareGpt = { conversations: conversation.map((m) => ({ from: { system: 'system', user: 'human', assistant: 'gpt' }[m.role], value: m.content })) };
    const a = prepareRow(shareGpt, 'chat', tok, true, LLAMA3_VOCAB);
    const b = prepareRow({ messages: conversation }, 'chat', tok, true, LLAMA3_VOCAB);
    expect(a.inputIds).toEqual(b.inputIds);
    expect(a.labels).toEqual(b.labels);
  });

  it('finds the turn when the template trims the content', () => {
    const row = prepareRow({ messages: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: '  No.\n' }] }, 'chat', tok, true, LLAMA3_VOCAB);
    const trained = row.inputIds.filter((_, i) => row.labels[i] !== M);
    expect(trained).toEqual([id('No'), id('.'), id('<|eot_id|>')]);
  });

  it('refuses conversations it cannot mask: no assistant turn, empty turn, unknown role', () => {
    expect(() => prepareRow({ messages: [{ role: 'user', content: 'Hi' }] }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/no assistant turn/);
    expect(() => prepareRow({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: ' ' }] }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/assistant turn 2 is empty/);
    expect(() => prepareRow({ messages: [{ role: 'tool', content: 'x' }] }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/"messages"\[0\]\.role is "tool"/);
    expect(() => prepareRow({ messages: [{ role: 'user' }] }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/has no "content"/);
  });

  it("reads TRL's conversational prompt/completion: one conversation, only the completion's answers trained (every row was refused)", () => {
    const row = {
      prompt: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello! How can I help?' }, { role: 'user', content: 'Tell me a joke' }],
      completion: [{ role: 'assistant', content: 'No.' }],
    };
    expect(formatOfRow(row)).toBe('chat');
    expect(formatOfRow({ prompt: 'Say:', completion: ' hi' })).toBe('completion');
    const r = prepareRow(row, 'chat', tok, true, LLAMA3_VOCAB);
    // the same text as the conversation in one list; the prompt's answer (a few-shot example) is not trained
    expect(r.text).toBe(prepareRow({ messages: [...row.prompt, ...row.completion] }, 'chat', tok, true, LLAMA3_VOCAB).text);
    expect(r.inputIds.filter((_, i) => r.labels[i] !== M)).toEqual([id('No'), id('.'), id('<|eot_id|>')]);
    expect(prepareRow(row, 'chat', tok, false, LLAMA3_VOCAB).labels).toEqual(r.inputIds);
    expect(() => prepareRow({ prompt: row.prompt, completion: [{ role: 'user', content: 'x' }] }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/"completion" has no assistant message/);
    expect(() => prepareRow({ prompt: row.prompt, completion: [{ role: 'assistant' }] }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/"completion"\[0\] has no "content"/);
  });

  it('passes raise_exception to templates, and a refusal becomes a row problem', async () => {
    const strict = await loadLlama3((c) => {
      c.chat_template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}" + c.chat_template;
    });
    expect(() => prepareRow({ messages: [{ role: 'assistant', content: 'Hi' }] }, 'chat', strict, true, LLAMA3_VOCAB)).toThrow(/refused this conversation: Conversations must start with the user/);
  });
});

describe('alpaca and completion rows on Llama 3', () => {
  it('lays alpaca rows out as a chat when the model has a template', () => {
    const r = renderAlpaca({ instruction: 'Add', input: '2 and 2', output: '4', system: '' }, tok);
    expect(r.text).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nAdd\n\n2 and 2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    const row = tokenizeRendered(tok, r, true);
    expect(row.inputIds.filter((_, i) => row.labels[i] !== M)).toEqual([id('4'), id('<|eot_id|>')]);
  });

  it('masks exactly when a token straddles the prompt/completion seam (one tokenization of the whole)', () => {
    // Llama 3 splits digits in groups of three: "1234" -> "123" "4", so the
    // prompt "...12" and the completion "34" share the token "123", which is
    // trained (the model must produce it to produce "34").
    const r = renderCompletion({ prompt: 'The number is 12', completion: '34' });
    const row = tokenizeRendered(tok, r, true);
    // no BOS: this tokenizer's post-processor adds none; EOS appended and trained
    const want = expected([['The', false], ['Ġnumber', false], ['Ġis', false], ['Ġ', false], ['123', true], ['4', true], ['<|end_of_text|>', true]]);
    expect(row.inputIds).toEqual(want.ids);
    expect(row.labels).toEqual(want.labels);
    // tokenizing the pieces separately would have given other ids
    const piecewise = [...tok.encode('The number is 12', { addSpecialTokens: false }), ...tok.encode('34', { addSpecialTokens: false })];
    expect(piecewise).not.toEqual(row.inputIds.slice(0, -1));
  });

  it('spells multi-byte characters back to the right offsets', () => {
    const r = renderCompletion({ prompt: 'Übersetze: 日本 → ', completion: 'Japan 🙂' });
    const row = tokenizeRendered(tok, r, true);
    expect(row.inputIds.slice(0, -1)).toEqual(tok.encode(r.text, { addSpecialTokens: false }));
    const trained = row.inputIds.filter((_, i) => row.labels[i] !== M);
    // " Japan" starts with the prompt's last space and is trained
    expect(tok.decode(trained)).toBe(' Japan 🙂<|end_of_text|>');
    expect(tok.decode(row.inputIds.filter((_, i) => row.labels[i] === M))).toBe('Übersetze: 日本 →');
  });
});

describe('the post-processor\'s BOS (the demo tokenizer adds <s>)', () => {
  it('text that already starts with it (a chat rendered to text) gets no second one (TRL trains two)', async () => {
    const demo = await ModelTokenizer.load(demoModelDir());
    const bos = demo.bosId!;
    const vocab = demo.vocabSize;
    const chat = chatTemplateOf(demo).render([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'No.' }], false);
    expect(chat.startsWith('<s>')).toBe(true);
    const count = (ids: number[]) => ids.filter((i) => i === bos).length;
    const text = prepareRow({ text: chat }, 'text', demo, true, vocab);
    expect(text.inputIds[0]).toBe(bos);
    expect(count(text.inputIds)).toBe(1);
    // the same ids as the chat row itself (which the template gives its one BOS)
    expect(text.inputIds).toEqual([...prepareRow({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'No.' }] }, 'chat', demo, true, vocab).inputIds]);
    const cut = chat.indexOf('No.');
    const completion = prepareRow({ prompt: chat.slice(0, cut), completion: chat.slice(cut) }, 'completion', demo, true, vocab);
    expect(count(completion.inputIds)).toBe(1);
    // text without it gets the post-processor's BOS, as before
    const plain = prepareRow({ text: 'Hi there' }, 'text', demo, true, vocab);
    expect(plain.inputIds[0]).toBe(bos);
    expect(count(plain.inputIds)).toBe(1);
  });
});
