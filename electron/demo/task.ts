// The demo's fine-tuning task: answer a question about the world in one word.
//   prompt      "Question: Where does the fox live?\nAnswer:"
//   completion  " forest"
// The base model has every fact (the corpus states each many times) but has
// never seen this format, so it does not answer. The facts are split into
// train and held-out questions; a held-out answer can only come from what the
// base model learned in pretraining, so held-out accuracy measures whether
// fine-tuning taught the format while keeping the knowledge.
import { Prng, shuffledIndices } from '../random/prng.js';
import type { Fact, FactRelation } from './world.js';

export interface TaskRow {
  prompt: string;
  completion: string;
}

const QUESTIONS: Record<FactRelation, (subject: string) => string> = {
  'animal.color': (s) => `What color is the ${s}?`,
  'animal.home': (s) => `Where does the ${s} live?`,
  'animal.food': (s) => `What does the ${s} eat?`,
  'person.town': (s) => `Where does ${s} live?`,
  'person.job': (s) => `What is the job of ${s}?`,
  'person.pet': (s) => `Which animal does ${s} have?`,
};

export function taskPrompt(question: string): string {
  return `Question: ${question}\nAnswer:`;
}

export function taskRow(fact: Fact): TaskRow {
  return { prompt: taskPrompt(QUESTIONS[fact.relation](fact.subject)), completion: ` ${fact.answer}` };
}

/**
 * Seeded split of the facts into train and held-out questions: about
 * `evalFraction` of every relation is held out, so each relation is both
 * taught and tested.
 */
export function splitFacts(facts: readonly Fact[], evalFraction: number, seed: number): { train: Fact[]; eval: Fact[] } {
  const train: Fact[] = [];
  const held: Fact[] = [];
  const relations = [...new Set(facts.map((f) => f.relation))];
  relations.forEach((relation, r) => {
    const group = facts.filter((f) => f.relation === relation);
    const evalCount = Math.round(group.length * evalFraction);
    const order = shuffledIndices(group.length, new Prng(seed, r));
    const heldOut = new Set(order.slice(0, evalCount));
    group.forEach((f, i) => (heldOut.has(i) ? held : train).push(f));
  });
  return { train, eval: held };
}

/**
 * The answer a generation gives: the text up to the first line break, trimmed,
 * without a final full stop. Scoring is exact match of that against the expected
 * answer (case-sensitive: "Oakvale" is the town, "oakvale" is not).
 */
export function extractAnswer(generated: string): string {
  const firstLine = generated.split('\n')[0];
  return firstLine.trim().replace(/\.$/, '').trim();
}

export function isCorrect(generated: string, expected: string): boolean {
  return extractAnswer(generated) === expected.trim();
}
