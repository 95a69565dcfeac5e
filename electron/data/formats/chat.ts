// Chat rows: OpenAI style {"messages": [{"role", "content"}]} or ShareGPT
// {"conversations": [{"from": "human"|"gpt"|"system", "value"}]} (a top-level
// "system" string, as some ShareGPT files have, becomes the first message),
// or TRL's conversational prompt/completion {"prompt": [messages],
// "completion": [messages]}: one conversation, of which only the completion's
// assistant turns are trained (the prompt's, e.g. few-shot answers, are not;
// TRL trains what follows the prompt's generation prompt).
// The conversation is rendered with the model's chat template (or the
// fallback, see chat-template.ts) in one piece; the trained ranges are the
// assistant turns, found as character ranges of that one rendered string:
//
//   start: the template renders the conversation up to turn i with
//          add_generation_prompt=true; that text must be a prefix of the whole
//          rendering, and the turn starts where it ends (after the assistant
//          header), and the turn's content starts there (found from there
//          when the template trims it or writes text of its own first). A turn
//          with reasoning_content (Qwen3's template writes it in a <think>
//          block before the content) is trained from that start, so the
//          reasoning is learned with the answer.
//   end:   the end of the content, extended over the special token that
//          closes the turn (<|eot_id|>, <|im_end|>, </s>, ...) when the
//          template writes one right after it (spaces allowed in between).
//
// A template that leaves the system message out of a finished conversation
// (Mistral v0.3 writes it into the last user turn only, so a conversation
// ending with the assistant's answer has none) renders the conversation as it
// would without it; the turns are then located on that conversation, whose
// partial renderings are prefixes of the text (the report says the system
// prompt was dropped). Training every token (--all-tokens) needs no turns
// located, so a template whose partial renderings are not prefixes can still
// train that way.
//
// Tokenization happens once on the whole string (mask.ts), so the tokens are
// exactly apply_chat_template(..., tokenize=True)'s.
// A change to the tokens, labels or row errors this gives needs ../token-cache.ts CACHE_VERSION bumped.
import type { ModelTokenizer } from '../../models/tokenizer.js';
import { chatTemplateOf, WITH_REASONING, WITHOUT_REASONING, type ChatMessage } from '../chat-template.js';
import { RowError } from '../problems.js';
import { asObject, optionalString, requireArray, type CharSpan, type Fields, type RenderedRow } from './row.js';

const ROLE_ALIASES: Record<string, ChatMessage['role']> = {
  system: 'system',
  user: 'user',
  human: 'user',
  assistant: 'assistant',
  gpt: 'assistant',
  model: 'assistant',
  bot: 'assistant',
};

/** Whether a row looks like a chat row (for format detection). */
export function isChatRow(row: Fields): boolean {
  return 'messages' in row || 'conversations' in row || isConversationalCompletion(row);
}

/** TRL's conversational prompt/completion: both fields lists of messages. */
function isConversationalCompletion(row: Fields): boolean {
  return Array.isArray(row.prompt) && Array.isArray(row.completion);
}

/** A chat row's conversation, and the first message whose assistant turns are trained (0: every one). */
export interface ChatRow {
  messages: ChatMessage[];
  trainFrom: number;
}

function messageContent(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  // OpenAI content parts: [{"type": "text", "text": "..."}]
  if (Array.isArray(value) && value.every((p) => p && typeof p === 'object' && (p as Fields).type === 'text' && typeof (p as Fields).text === 'string')) {
    return value.map((p) => (p as { text: string }).text).join('');
  }
  throw new RowError('wrong-type', `${where} must be a string (or a list of {"type": "text", "text": ...} parts), got ${JSON.stringify(value)?.slice(0, 60)}`);
}

/** The conversation of a chat row, roles normalised to system/user/assistant. */
export function parseConversation(value: unknown): ChatMessage[] {
  return parseChatRow(value).messages;
}

/** A chat row: its conversation, roles normalised to system/user/assistant, and which turns are trained. */
export function parseChatRow(value: unknown): ChatRow {
  const row = asObject(value);
  if (!('messages' in row) && !('conversations' in row) && isConversationalCompletion(row)) {
    const prompt = messagesOf(row, 'prompt', true, true);
    const completion = messagesOf(row, 'completion', true, false);
    if (!completion.some((m) => m.role === 'assistant')) throw new RowError('nothing-to-learn', '"completion" has no assistant message to train on');
    return { messages: [...prompt, ...completion], trainFrom: prompt.length };
  }
  const openAi = 'messages' in row;
  if (!openAi && !('conversations' in row)) {
    throw new RowError('missing-field', `missing "messages" (OpenAI style: [{"role", "content"}]), "conversations" (ShareGPT: [{"from", "value"}]) or "prompt" and "completion" as lists of messages (fields found: ${Object.keys(row).join(', ') || 'none'})`);
  }
  const messages = messagesOf(row, openAi ? 'messages' : 'conversations', openAi, false);
  const system = optionalString(row, 'system');
  if (system && messages[0].role !== 'system') messages.unshift({ role: 'system', content: system });
  return { messages, trainFrom: 0 };
}

/** The messages of a list field: OpenAI style ({role, content}) or ShareGPT ({from, value}). */
function messagesOf(row: Fields, field: string, openAi: boolean, allowEmpty: boolean): ChatMessage[] {
  const list = requireArray(row, field);
  if (list.length === 0 && !allowEmpty) throw new RowError('empty', `"${field}" is empty`);
  return list.map((item, i): ChatMessage => {
    const where = `"${field}"[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new RowError('wrong-type', `${where} must be an object`);
    const m = item as Fields;
    const [roleKey, contentKey] = openAi ? ['role', 'content'] : ['from', 'value'];
    if (!(roleKey in m)) throw new RowError('missing-field', `${where} has no "${roleKey}"`);
    if (!(contentKey in m)) throw new RowError('missing-field', `${where} has no "${contentKey}"`);
    const role = typeof m[roleKey] === 'string' ? ROLE_ALIASES[(m[roleKey] as string).toLowerCase()] : undefined;
    if (!role) throw new RowError('wrong-type', `${where}.${roleKey} is ${JSON.stringify(m[roleKey])}; use system, user or assistant (ShareGPT: system, human, gpt)`);
    const content = messageContent(m[contentKey], `${where}.${contentKey}`);
    // an assistant's reasoning, as OpenAI-style datasets for reasoning models carry it (the template decides where it goes)
    if (openAi && role === 'assistant' && 'reasoning_content' in m && m.reasoning_content !== null && m.reasoning_content !== undefined) {
      if (typeof m.reasoning_content !== 'string') throw new RowError('wrong-type', `${where}.reasoning_content must be a string, got ${JSON.stringify(m.reasoning_content)?.slice(0, 60)}`);
      return { role, content, reasoning_content: m.reasoning_content };
    }
    return { role, content };
  });
}

/**
 * Renders a conversation and finds its assistant turns from message trainFrom
 * on as character ranges (locateTurns false: every token is trained, no
 * ranges are needed).
 */
export function renderConversation(messages: readonly ChatMessage[], tokenizer: ModelTokenizer, locateTurns = true, trainFrom = 0): RenderedRow {
  const template = chatTemplateOf(tokenizer);
  const assistantTurns = messages.flatMap((m, i) => (m.role === 'assistant' && i >= trainFrom ? [i] : []));
  if (assistantTurns.length === 0) throw new RowError('nothing-to-learn', 'the conversation has no assistant turn to train on');
  for (const i of assistantTurns) {
    if (messages[i].content.trim() === '') throw new RowError('empty', `assistant turn ${i + 1} is empty`);
  }
  const render = template.render.bind(template);
  const text = render(messages, false);
  const systemDropped = dropsSystem(messages, text, render);
  // turns whose reasoning the template wrote (Qwen3's does; the fallback and many others do not)
  const reasoningOf = (m: ChatMessage) => m.reasoning_content?.trim() ?? '';
  const withReasoning = assistantTurns.filter((i) => reasoningOf(messages[i]) !== '');
  const reasoningWritten = withReasoning.filter((i) => text.includes(reasoningOf(messages[i])));
  const layout = template.layout + (reasoningWritten.length > 0 ? WITH_REASONING : withReasoning.length > 0 ? WITHOUT_REASONING : '');
  const rendered = { kind: 'rendered' as const, text, addSpecialTokens: false, appendEos: false, layout, ...(systemDropped ? { systemDropped: true } : {}) };
  if (!locateTurns) return { ...rendered, trainSpans: [] };
  // the text is this conversation's rendering: without its system messages when the template drops them
  const kept = messages.flatMap((m, k) => (systemDropped && m.role === 'system' ? [] : [k]));
  const conversation = kept.map((k) => messages[k]);
  const closers = turnClosers(tokenizer);
  const spans: CharSpan[] = [];
  conversation.forEach((message, i) => {
    const turn = kept[i];  // its place in the row's conversation
    if (message.role !== 'assistant' || turn < trainFrom) return;
    const start = turnStart(conversation, i, turn, text, render);
    const content = message.content;
    // The turn's reasoning, where the template wrote it: the content comes after it (an answer that
    // also appears inside the reasoning, "... so the answer is 42." then "42", is the second one).
    const reasoning = reasoningOf(message);
    const reasoningAt = reasoning === '' ? -1 : text.indexOf(reasoning, start);
    let s: number;
    let e: number;
    if (reasoningAt < 0 && text.startsWith(content, start)) {
      [s, e] = [start, start + content.length];
    } else {
      // The template writes the content changed (trimmed) or after text of its own: the assistant
      // header of a template that ignores add_generation_prompt (generation lays that out as the
      // prompt's end too: probeAnswer), or Qwen3's <think> block. A turn whose reasoning the template
      // wrote is trained from the end of the generation prompt, so its reasoning is learned with the
      // answer (as {% generation %} marks it); any other from its content.
      const core = content.trim();
      const k = text.indexOf(core, reasoningAt < 0 ? start : reasoningAt + reasoning.length);
      if (k < 0) throw new RowError('template', `cannot find assistant turn ${turn + 1} in the rendered conversation (the chat template changes its text), so its tokens cannot be masked exactly; use --all-tokens or another format`);
      [s, e] = [reasoningAt < 0 ? k : start, k + core.length];
    }
    spans.push([s, closeTurn(text, e, closers)]);
  });
  return { ...rendered, trainSpans: spans };
}

/**
 * Whether the template leaves the system message(s) out of the text. Some
 * templates only write user and assistant turns; the system prompt is then
 * not trained on and the user must know. A system text found in the rendering
 * is kept; one not found is confirmed by rendering without the system
 * messages (a template that rewrites the system text renders differently
 * then, one that ignores it renders the same), so the common case costs no
 * second rendering.
 */
function dropsSystem(messages: readonly ChatMessage[], text: string, render: (m: readonly ChatMessage[], g: boolean) => string): boolean {
  const systems = messages.filter((m) => m.role === 'system' && m.content.trim() !== '');
  if (systems.length === 0 || systems.every((m) => text.includes(m.content.trim()))) return false;
  return render(messages.filter((m) => m.role !== 'system'), false) === text;
}

const closersCache = new WeakMap<ModelTokenizer, string[]>();

/** Texts that can close a turn: EOS and every special token (longest first). */
function turnClosers(tokenizer: ModelTokenizer): string[] {
  let closers = closersCache.get(tokenizer);
  if (!closers) {
    closers = [...new Set([...(tokenizer.eosToken ? [tokenizer.eosToken] : []), ...tokenizer.specialTokenTexts()])].filter((t) => t.length > 0).sort((a, b) => b.length - a.length);
    closersCache.set(tokenizer, closers);
  }
  return closers;
}

/**
 * Where assistant turn i's content may start: the end of the rendering up to it
 * with the generation prompt (`turn`: its number in the row, for the message).
 */
function turnStart(messages: readonly ChatMessage[], i: number, turn: number, text: string, render: (m: readonly ChatMessage[], g: boolean) => string): number {
  let prefix: string;
  try {
    prefix = render(messages.slice(0, i), true);
  } catch (e) {
    // Some templates refuse an empty or unfinished conversation; then search from the start.
    if (i === 0) return 0;
    throw e;
  }
  if (!text.startsWith(prefix)) {
    throw new RowError('template', `the chat template renders the conversation before assistant turn ${turn + 1} differently from the whole conversation, so the turn's tokens cannot be located exactly; use --all-tokens or another format`);
  }
  return prefix.length;
}

/** Extends a turn's end over the special token that closes it, if one follows (after optional spaces). */
function closeTurn(text: string, end: number, closers: readonly string[]): number {
  let j = end;
  while (j < text.length && j - end < 4 && text[j] === ' ') j++;
  for (const c of closers) if (text.startsWith(c, j)) return j + c.length;
  return end;
}

/** What the assistant's answer of probeAnswer says. */
export interface AnswerProbe {
  /** the conversation rendered with the probe answer */
  text: string;
  /** where the answer starts in `text` */
  answerAt: number;
  /**
   * the special token the template writes right after the answer (<|eot_id|>,
   * <|im_end|>, EOS, ...): training counts it as part of the turn (see
   * closeTurn), so a model trained on chat rows learns to end its answer with
   * it; null when there is none
   */
  closer: string | null;
}

const PROBE_ANSWER = 'PEFT-STUDIO-PROBE-ANSWER';

/**
 * `messages` rendered with an assistant answer after them, as a trained row
 * has one: where the answer starts and the token that closes its turn. Null
 * when the template refuses the conversation or does not show the answer.
 */
export function probeAnswer(tokenizer: ModelTokenizer, messages: readonly ChatMessage[]): AnswerProbe | null {
  let text: string;
  try {
    text = chatTemplateOf(tokenizer).render([...messages, { role: 'assistant', content: PROBE_ANSWER }], false);
  } catch {
    return null;
  }
  const answerAt = text.indexOf(PROBE_ANSWER);
  if (answerAt < 0) return null;
  const contentEnd = answerAt + PROBE_ANSWER.length;
  const end = closeTurn(text, contentEnd, turnClosers(tokenizer));
  return { text, answerAt, closer: end > contentEnd ? text.slice(contentEnd, end).trimStart() : null };
}
