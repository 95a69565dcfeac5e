// The demo's figures for one model state (the base model, or the base with
// what fine-tuning produced): eval loss on the held-out questions, task
// accuracy by greedy generation scored exactly, sample answers, and the
// perplexity of held-out pretraining text (the forgetting check).
import { evaluateExamples } from '../inference/eval.js';
import { generate } from '../inference/generate.js';
import { stopTokenIds, type ModelSession } from '../session.js';
import type { Example } from '../training/data.js';
import { isCorrect, type TaskRow } from './task.js';

export interface DemoData {
  evalRows: TaskRow[];
  /** the same rows, tokenized with the prompt masked */
  evalExamples: Example[];
  /** held-out pretraining text, tokenized as training reads {"text"} rows */
  baseSample: Example[];
  /** indices into evalRows shown as samples */
  sampleIndices: number[];
}

export interface Sample {
  prompt: string;
  expected: string;
  generated: string;
  correct: boolean;
}

export interface Figures {
  eval_loss: number;
  accuracy: number;
  correct: number;
  questions: number;
  base_perplexity: number;
  base_tokens: number;
  samples: Sample[];
  seconds: number;
}

/** Answers are one word; a few extra tokens show what the model does instead. */
export const ANSWER_TOKENS = 8;
const EVAL_BATCH = 16;

async function answer(session: ModelSession, prompt: string, stops: number[]): Promise<string> {
  const ids = session.tokenizer.encode(prompt);
  const r = await generate(session.engine, ids, {
    maxNewTokens: ANSWER_TOKENS,
    seed: 0,
    temperature: 0,
    topP: 1,
    stopTokenIds: stops,
    maxPositions: session.folder.spec.maxPositionEmbeddings,
  });
  return session.tokenizer.decode(r.tokens, { skipSpecialTokens: true });
}

export async function measure(session: ModelSession, data: DemoData): Promise<Figures> {
  const started = performance.now();
  const taskLoss = await evaluateExamples(session.engine, data.evalExamples, EVAL_BATCH);
  const base = await evaluateExamples(session.engine, data.baseSample, EVAL_BATCH);
  const stops = await stopTokenIds(session.folder, session.tokenizer);
  const generated: string[] = [];
  let correct = 0;
  for (const row of data.evalRows) {
    const text = await answer(session, row.prompt, stops);
    generated.push(text);
    if (isCorrect(text, row.completion)) correct++;
  }
  const samples = data.sampleIndices.map((i) => ({
    prompt: data.evalRows[i].prompt,
    expected: data.evalRows[i].completion.trim(),
    generated: generated[i],
    correct: isCorrect(generated[i], data.evalRows[i].completion),
  }));
  return {
    eval_loss: taskLoss.loss,
    accuracy: correct / data.evalRows.length,
    correct,
    questions: data.evalRows.length,
    base_perplexity: base.perplexity,
    base_tokens: base.tokens,
    samples,
    seconds: (performance.now() - started) / 1000,
  };
}

