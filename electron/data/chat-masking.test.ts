// Chat rendering with the real Llama 3 template and tokenizer, and the
// exactness of the completion-only mask. Expected ids come from
// tokenizer.json's vocabulary by hand (the pieces the Llama 3 pre-tokenizer
// splits these words into), not from the tokenizer library.
import { beforeAll, describe, expect, it } from 'vitest';
import { IGNORE_INDEX } from '../training/data.js';
import { chatTemplateOf, WITH_REASONING, WITHOUT_REASONING } from './chat-template.js';
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
/** Qwen3's chat template, as TRL keeps a copy of it (trl/chat_templates/qwen3.jinja). */
const QWEN3_TEMPLATE = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0].role == 'system' %}\n        {{- messages[0].content + '\\n\\n' }}\n    {%- endif %}\n    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0].role == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n{%- for message in messages[::-1] %}\n    {%- set index = (messages|length - 1) - loop.index0 %}\n    {%- if ns.multi_step_tool and message.role == \"user\" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n        {%- set ns.multi_step_tool = false %}\n        {%- set ns.last_query_index = index %}\n    {%- endif %}\n{%- endfor %}\n{%- for message in messages %}\n    {%- if message.content is string %}\n        {%- set content = message.content %}\n    {%- else %}\n        {%- set content = '' %}\n    {%- endif %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}\n        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {%- set reasoning_content = '' %}\n        {%- if message.reasoning_content is string %}\n            {%- set reasoning_content = message.reasoning_content %}\n        {%- else %}\n            {%- if '</think>' in content %}\n                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n            {%- endif %}\n        {%- endif %}\n        {%- if loop.index0 > ns.last_query_index %}\n            {%- if loop.last or (not loop.last and reasoning_content) %}\n                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n            {%- else %}\n                {{- '<|im_start|>' + message.role + '\\n' + content }}\n            {%- endif %}\n        {%- else %}\n            {{- '<|im_start|>' + message.role + '\\n' + content }}\n        {%- endif %}\n        {%- if message.tool_calls %}\n            {%- for tool_call in message.tool_calls %}\n                {%- if (loop.first and content) or (not loop.first) %}\n                    {{- '\\n' }}\n                {%- endif %}\n                {%- if tool_call.function %}\n                    {%- set tool_call = tool_call.function %}\n                {%- endif %}\n                {{- '<tool_call>\\n{\"name\": \"' }}\n                {{- tool_call.name }}\n                {{- '\", \"arguments\": ' }}\n                {%- if tool_call.arguments is string %}\n                    {{- tool_call.arguments }}\n                {%- else %}\n                    {{- tool_call.arguments | tojson }}\n                {%- endif %}\n                {{- '}\\n</tool_call>' }}\n            {%- endfor %}\n        {%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n    {%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}\n{%- endif %}";
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
    // a format chosen by hand that does not read them says which one does
    expect(() => prepareRow(row, 'completion', tok, true, LLAMA3_VOCAB)).toThrow(/lists of messages \(TRL's conversational prompt \/ completion\): read the file in the chat format/);
    expect(() => prepareRow({ prompt: 'Say:', completion: ' hi' }, 'chat', tok, true, LLAMA3_VOCAB)).toThrow(/or "prompt" and "completion" as lists of messages \(fields found: prompt, completion\)/);
  });

  it("an assistant's reasoning_content goes to the template, and is trained with the answer (Qwen3's <think> block)", async () => {
    // Qwen3's chat template on the Llama 3 vocabulary: its turn
    // tokens are plain text here, the layout and the span are what matter
    const qwen3 = await loadLlama3((c) => { c.chat_template = QWEN3_TEMPLATE; });
    const messages = [{ role: 'user', content: '2+2?' }, { role: 'assistant', content: '4', reasoning_content: 'two plus two is four' }];
    const row = prepareRow({ messages }, 'chat', qwen3, true, LLAMA3_VOCAB);
    expect(row.text).toBe('<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\ntwo plus two is four\n</think>\n\n4<|im_end|>\n');
    // trained: from the end of the generation prompt ("<|im_start|>assistant\n") to the answer's end
    expect(qwen3.decode(row.inputIds.filter((_, i) => row.labels[i] !== M))).toBe('<think>\ntwo plus two is four\n</think>\n\n4');
    // without it, the template's empty <think> block is laid out by generation as the prompt's end (probeAnswer): not trained
    const plain = prepareRow({ messages: [messages[0], { role: 'assistant', content: '4' }] }, 'chat', qwen3, true, LLAMA3_VOCAB);
    expect(plain.text).toContain('<think>\n\n</think>\n\n4');
    expect(qwen3.decode(plain.inputIds.filter((_, i) => plain.labels[i] !== M))).toBe('4');
    expect(() => prepareRow({ messages: [messages[0], { role: 'assistant', content: '4', reasoning_content: 7 }] }, 'chat', qwen3, true, LLAMA3_VOCAB))
      .toThrow(/"messages"\[1\]\.reasoning_content must be a string, got 7/);
    expect(row.layout).toBe(`the model's chat template${WITH_REASONING}`);
  });

  it('an answer that also appears inside the reasoning is found after it: the whole turn is trained (it stopped at the first copy)', async () => {
    const qwen3 = await loadLlama3((c) => { c.chat_template = QWEN3_TEMPLATE; });
    const messages = [{ role: 'user', content: '6 x 7?' }, { role: 'assistant', content: '42', reasoning_content: '6 x 7 = 42, so the answer is 42.' }];
    const row = prepareRow({ messages }, 'chat', qwen3, true, LLAMA3_VOCAB);
    expect(qwen3.decode(row.inputIds.filter((_, i) => row.labels[i] !== M))).toBe('<think>\n6 x 7 = 42, so the answer is 42.\n</think>\n\n42');
  });

  it('reasoning a template does not write is left out, and the layout says so (it was dropped without a word)', () => {
    // the Llama 3 template writes message content only
    const row = prepareRow({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'No.', reasoning_content: 'a short answer' }] }, 'chat', tok, true, LLAMA3_VOCAB);
    expect(row.text).not.toContain('a short answer');
    expect(row.inputIds.filter((_, i) => row.labels[i] !== M)).toEqual([id('No'), id('.'), id('<|eot_id|>')]);
    expect(row.layout).toBe(`the model's chat template${WITHOUT_REASONING}`);
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
