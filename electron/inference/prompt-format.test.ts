// Prompt layouts for generation: each gives exactly the tokens training put
// before the trained part of a row of that format (so an adapter is prompted
// as it learned), checked against prepareRow on the real Llama 3 tokenizer
// (chat template, and without one: the Alpaca prompt) and the demo's; the
// chat layout's text and stop token against the Llama 3 chat format as
// written out by hand, its ids against tokenizer.json's vocabulary.
import { beforeAll, describe, expect, it } from 'vitest';
import { bundledDemoFiles } from '../demo/paths.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { IGNORE_INDEX } from '../training/data.js';
import { prepareRow } from '../data/prepare-row.js';
import { LLAMA3_VOCAB, llama3Ids, loadLlama3 } from '../data/testing/llama3.js';
import type { DatasetFormat } from '../data/options.js';
import { layOutPrompt, PromptFormatError, promptFormatOfData, type PromptFormat } from './prompt-format.js';
import { trainedPromptFormatOf } from './trained-prompt-format.js';
import { WITH_REASONING } from '../data/chat-template.js';
import type { RunRecord } from '../runs/run-record.js';

/** The ids training puts before the first trained token of a row. */
function untrainedPrefix(value: unknown, format: DatasetFormat, tok: ModelTokenizer, vocab: number): number[] {
  const row = prepareRow(value, format, tok, true, vocab);
  const first = row.labels.findIndex((l) => l !== IGNORE_INDEX);
  expect(first).toBeGreaterThan(0);
  return row.inputIds.slice(0, first);
}

/** Qwen3's chat template, as TRL keeps a copy of it (trl/chat_templates/qwen3.jinja). */
const QWEN3_TEMPLATE = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0].role == 'system' %}\n        {{- messages[0].content + '\\n\\n' }}\n    {%- endif %}\n    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0].role == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n{%- for message in messages[::-1] %}\n    {%- set index = (messages|length - 1) - loop.index0 %}\n    {%- if ns.multi_step_tool and message.role == \"user\" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n        {%- set ns.multi_step_tool = false %}\n        {%- set ns.last_query_index = index %}\n    {%- endif %}\n{%- endfor %}\n{%- for message in messages %}\n    {%- if message.content is string %}\n        {%- set content = message.content %}\n    {%- else %}\n        {%- set content = '' %}\n    {%- endif %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}\n        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {%- set reasoning_content = '' %}\n        {%- if message.reasoning_content is string %}\n            {%- set reasoning_content = message.reasoning_content %}\n        {%- else %}\n            {%- if '</think>' in content %}\n                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n            {%- endif %}\n        {%- endif %}\n        {%- if loop.index0 > ns.last_query_index %}\n            {%- if loop.last or (not loop.last and reasoning_content) %}\n                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n            {%- else %}\n                {{- '<|im_start|>' + message.role + '\\n' + content }}\n            {%- endif %}\n        {%- else %}\n            {{- '<|im_start|>' + message.role + '\\n' + content }}\n        {%- endif %}\n        {%- if message.tool_calls %}\n            {%- for tool_call in message.tool_calls %}\n                {%- if (loop.first and content) or (not loop.first) %}\n                    {{- '\\n' }}\n                {%- endif %}\n                {%- if tool_call.function %}\n                    {%- set tool_call = tool_call.function %}\n                {%- endif %}\n                {{- '<tool_call>\\n{\"name\": \"' }}\n                {{- tool_call.name }}\n                {{- '\", \"arguments\": ' }}\n                {%- if tool_call.arguments is string %}\n                    {{- tool_call.arguments }}\n                {%- else %}\n                    {{- tool_call.arguments | tojson }}\n                {%- endif %}\n                {{- '}\\n</tool_call>' }}\n            {%- endfor %}\n        {%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n    {%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}\n{%- endif %}";

let llama3: ModelTokenizer;
let llama3Base: ModelTokenizer;
let llama3NoGen: ModelTokenizer;
let llama3Spaced: ModelTokenizer;
let llama3NoSystem: ModelTokenizer;
let id: (piece: string) => number;
beforeAll(async () => {
  llama3 = await loadLlama3();
  llama3Base = await loadLlama3((c) => delete c.chat_template);
  // a ChatML-like template written without add_generation_prompt (many community templates are)
  llama3NoGen = await loadLlama3((c) => (c.chat_template = "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] + '<|eot_id|>' }}{% endfor %}"));
  llama3Spaced = await loadLlama3((c) => (c.chat_template = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}Question: {{ m['content'] }}\\nAnswer:{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"));
  // Mistral-style: roles must alternate user/assistant, no system role
  llama3NoSystem = await loadLlama3((c) => (c.chat_template = "{{ bos_token }}{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}"));
  id = llama3Ids();
});

describe('layOutPrompt', () => {
  it('chat: one user turn in the Llama 3 format, ended by the assistant header, stopping at <|eot_id|>', () => {
    const p = layOutPrompt(llama3, 'chat', 'Tell me a joke', 'Be brief.');
    expect(p.text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nTell me a joke<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const header = (role: string) => [id('<|start_header_id|>'), id(role), id('<|end_header_id|>'), id('ĊĊ')];
    expect(p.ids).toEqual([
      id('<|begin_of_text|>'), ...header('system'), id('Be'), id('Ġbrief'), id('.'), id('<|eot_id|>'),
      ...header('user'), id('Tell'), id('Ġme'), id('Ġa'), id('Ġjoke'), id('<|eot_id|>'),
      ...header('assistant'),
    ]);
    expect(p.stopTokenIds).toEqual([id('<|eot_id|>')]);
    expect(p.layout).toBe("the model's chat template");
  });

  it('alpaca without a chat template: the Alpaca prompt as alpaca-lora writes it, no extra stop token', () => {
    const p = layOutPrompt(llama3Base, 'alpaca', 'Name a colour.');
    expect(p.text).toBe('Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:\n');
    // (this copy of the Llama 3 tokenizer.json has no post-processor: no BOS is added)
    expect(p.ids).toEqual(llama3Base.encode(p.text, { addSpecialTokens: false }));
    expect(p.ids.slice(-3)).toEqual([id('###'), id('ĠResponse'), id(':Ċ')]);
    expect(p.stopTokenIds).toEqual([]);
  });

  it('a template that refuses system messages: the system message is named as the thing to leave out', () => {
    expect(() => layOutPrompt(llama3NoSystem, 'chat', 'Hi', 'Be brief.')).toThrow(expect.objectContaining({
      field: 'system',
      message: "the model's chat template takes no system message (the chat template refused this conversation: Conversation roles must alternate user/assistant/user/assistant/...): leave the system message out",
    }));
    expect(layOutPrompt(llama3NoSystem, 'chat', 'Hi').text).toBe('<|begin_of_text|>[INST] Hi [/INST]');
  });

  it('plain: the text as written after the BOS the tokenizer adds; a system message is refused by name', async () => {
    expect(layOutPrompt(llama3, 'plain', 'Once upon').ids).toEqual([id('Once'), id('Ġupon')]);
    const demo = await ModelTokenizer.load(bundledDemoFiles().model);
    expect(demo.bosId).not.toBeNull();
    const p = layOutPrompt(demo, 'plain', 'Question: x');
    expect(p.ids[0]).toBe(demo.bosId);
    expect(p.ids.slice(1)).toEqual(demo.encode('Question: x', { addSpecialTokens: false }));
    expect(p.text).toBe('<s>Question: x'); // the BOS it is given, spelled out
    expect(() => layOutPrompt(llama3, 'plain', 'x', 'Be brief.')).toThrow(PromptFormatError);
    expect(() => layOutPrompt(llama3, 'plain', 'x', 'Be brief.')).toThrow(/system message needs the chat or alpaca layout/);
  });
});

describe('a prompt laid out as the rows were is exactly what training put before the answer', () => {
  const cases: { name: string; tok: () => ModelTokenizer; vocab: () => number; format: DatasetFormat; row: unknown; prompt: string; system?: string }[] = [
    { name: 'chat rows, Llama 3 template', tok: () => llama3, vocab: () => LLAMA3_VOCAB, format: 'chat', prompt: 'What is 12 + 34?', system: 'You add numbers.',
      row: { messages: [{ role: 'system', content: 'You add numbers.' }, { role: 'user', content: 'What is 12 + 34?' }, { role: 'assistant', content: '46' }] } },
    { name: 'chat rows, the fallback template (no chat_template)', tok: () => llama3Base, vocab: () => LLAMA3_VOCAB, format: 'chat', prompt: 'Hi there',
      row: { messages: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello!' }] } },
    { name: 'alpaca rows, Llama 3 (its chat template)', tok: () => llama3, vocab: () => LLAMA3_VOCAB, format: 'alpaca', prompt: 'Name a colour.',
      row: { instruction: 'Name a colour.', output: 'Blue.' } },
    { name: 'alpaca rows, no chat template (the Alpaca prompt)', tok: () => llama3Base, vocab: () => LLAMA3_VOCAB, format: 'alpaca', prompt: 'Name a colour.', system: 'You answer in one word.',
      row: { instruction: 'Name a colour.', output: 'Blue.', system: 'You answer in one word.' } },
    { name: 'chat rows, a template that ignores add_generation_prompt (the header comes from a probe answer)', tok: () => llama3NoGen, vocab: () => LLAMA3_VOCAB, format: 'chat', prompt: 'Hi', system: 'Be brief.',
      row: { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] } },
    { name: 'chat rows, the demo-like template with a space before the answer (the space goes with the answer)', tok: () => llama3Spaced, vocab: () => LLAMA3_VOCAB, format: 'chat', prompt: 'What color is the fox?',
      row: { messages: [{ role: 'user', content: 'What color is the fox?' }, { role: 'assistant', content: 'white' }] } },
    { name: 'completion rows, Llama 3', tok: () => llama3, vocab: () => LLAMA3_VOCAB, format: 'completion', prompt: 'The capital of France is',
      row: { prompt: 'The capital of France is', completion: ' Paris' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const format: PromptFormat = promptFormatOfData(c.format);
      expect(layOutPrompt(c.tok(), format, c.prompt, c.system).ids).toEqual(untrainedPrefix(c.row, c.format, c.tok(), c.vocab()));
    });
  }

  it("Qwen3's template: rows without reasoning are prompted with its empty <think> block, an adapter trained on reasoning is not", async () => {
    const qwen3 = await loadLlama3((c) => (c.chat_template = QWEN3_TEMPLATE));
    const plainRow = { messages: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello' }] };
    const reasoningRow = { messages: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello', reasoning_content: 'a greeting' }] };
    // each layout is exactly what training put before the trained part of such a row
    const withBlock = layOutPrompt(qwen3, 'chat', 'Hi there');
    expect(withBlock.text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
    expect(withBlock.ids).toEqual(untrainedPrefix(plainRow, 'chat', qwen3, LLAMA3_VOCAB));
    const own = layOutPrompt(qwen3, 'chat', 'Hi there', '', true);
    expect(own.text.endsWith('<|im_start|>assistant\n')).toBe(true);
    expect(own.ids).toEqual(untrainedPrefix(reasoningRow, 'chat', qwen3, LLAMA3_VOCAB));
    // the row's layout says its reasoning was trained, and a run that recorded it is prompted that way
    expect(prepareRow(reasoningRow, 'chat', qwen3, true, LLAMA3_VOCAB).layout).toBe(`the model's chat template${WITH_REASONING}`);
    const record = (layouts: string[]) => ({ config: { data: '/d.jsonl' }, resolved: { data: { format: 'chat', layouts } } }) as unknown as RunRecord;
    expect(trainedPromptFormatOf(record([`the model's chat template${WITH_REASONING}`]))).toMatchObject({ format: 'chat', reasoning: true });
    expect(trainedPromptFormatOf(record(["the model's chat template"]))).toMatchObject({ format: 'chat', reasoning: false });
    // a template that ignores add_generation_prompt keeps its header from the probe either way
    expect(layOutPrompt(llama3NoGen, 'chat', 'Hi', '', true).ids).toEqual(layOutPrompt(llama3NoGen, 'chat', 'Hi').ids);
  });

  it("the demo model: its template's user turn, and its completion rows, give the same prompt", async () => {
    const demo = await ModelTokenizer.load(bundledDemoFiles().model);
    const vocab = demo.vocabSize;
    const prompt = 'Question: What color is the fox?\nAnswer:';
    const fromCompletion = untrainedPrefix({ prompt, completion: ' white' }, 'completion', demo, vocab);
    expect(layOutPrompt(demo, 'plain', prompt).ids).toEqual(fromCompletion);
    // the demo's chat template writes "Question: …\nAnswer:" around a user turn
    expect(layOutPrompt(demo, 'chat', 'What color is the fox?').ids).toEqual(fromCompletion);
    // its assistant turn ends with EOS, which already stops generation
    expect(layOutPrompt(demo, 'chat', 'x').stopTokenIds).toEqual([demo.eosId]);
  });
});
