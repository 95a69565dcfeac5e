// The pretraining corpus of the demo model: short paragraphs of simple
// English about the world of world.ts. Every fact is stated in several
// phrasings and sentence positions (a model learns to recall a fact far better
// when it has seen it said in more than one way), mixed with small events that
// stay consistent with the facts. The corpus never uses the "Question: ...
// Answer: ..." format of the fine-tuning task, so the base model does not know
// that format. Deterministic: the same world and seed give the same text.
import { Prng } from '../random/prng.js';
import type { Animal, Person, World } from './world.js';

type Rng = Prng;

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.nextInt(items.length)];
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** "a fox", "an owl", "an orange cat" */
export function withArticle(phrase: string): string {
  return (/^[aeiou]/.test(phrase) ? 'an ' : 'a ') + phrase;
}

const ANIMAL_FACT_SENTENCES: ((a: Animal) => string)[] = [
  (a) => `The ${a.name} is ${a.color}.`,
  (a) => `The color of the ${a.name} is ${a.color}.`,
  (a) => `${capitalize(a.color)} is the color of the ${a.name}.`,
  (a) => `Every ${a.name} is ${a.color}.`,
  (a) => `The ${a.name} lives in the ${a.home}.`,
  (a) => `The ${a.home} is the home of the ${a.name}.`,
  (a) => `In the ${a.home} lives the ${a.name}.`,
  (a) => `The ${a.name} has its home in the ${a.home}.`,
  (a) => `The ${a.name} eats ${a.food}.`,
  (a) => `The food of the ${a.name} is ${a.food}.`,
  (a) => `${capitalize(a.food)} is what the ${a.name} eats.`,
  (a) => `The ${a.name} likes to eat ${a.food}.`,
  (a) => `The ${a.color} ${a.name} lives in the ${a.home} and eats ${a.food}.`,
  (a) => `In the ${a.home} you can see the ${a.color} ${a.name}.`,
];

const ANIMAL_EVENTS: ((a: Animal, other: Animal, p: Person) => string)[] = [
  (a) => `One morning the ${a.color} ${a.name} left the ${a.home} to look for ${a.food}.`,
  (a) => `The ${a.name} went back to the ${a.home} and ate some ${a.food}.`,
  (a, o) => `The ${a.color} ${a.name} met the ${o.color} ${o.name} near the ${a.home}.`,
  (a, o) => `The ${a.name} and the ${o.name} played in the ${o.home}.`,
  (a, _o, p) => `${p.name} saw ${withArticle(`${a.color} ${a.name}`)} in the ${a.home}.`,
  (a, _o, p) => `${p.name} gave some ${a.food} to the ${a.name}.`,
  (a) => `At night the ${a.name} sleeps in the ${a.home}.`,
  (a) => `It was a quiet day, and the ${a.name} found a lot of ${a.food}.`,
];

const PERSON_FACT_SENTENCES: ((p: Person, pet: Animal) => string)[] = [
  (p) => `${p.name} lives in ${p.town}.`,
  (p) => `${p.town} is the town where ${p.name} lives.`,
  (p) => `In ${p.town} lives ${p.name}.`,
  (p) => `${p.name} is ${withArticle(p.job)}.`,
  (p) => `${p.name} works as ${withArticle(p.job)}.`,
  (p) => `The job of ${p.name} is ${p.job}.`,
  (p) => `${p.name} has a pet ${p.pet}.`,
  (p) => `The pet of ${p.name} is ${withArticle(p.pet)}.`,
  (p, pet) => `${p.name} has ${withArticle(`${pet.color} ${p.pet}`)} as a pet.`,
  (p) => `${p.name}, the ${p.job}, lives in ${p.town}.`,
  (p) => `${p.name} is ${withArticle(p.job)} in ${p.town} and has a pet ${p.pet}.`,
];

const PERSON_EVENTS: ((p: Person, pet: Animal, other: Person) => string)[] = [
  (p) => `Every day ${p.name} walks with the ${p.pet} through ${p.town}.`,
  (p, pet) => `${p.name} gave ${pet.food} to the pet ${p.pet}.`,
  (p, _pet, o) => `${p.name} and ${o.name} met in ${p.town}.`,
  (p, _pet, o) => `${o.name} visited ${p.name} in ${p.town}.`,
  (p) => `After work, the ${p.job} went home to ${p.town}.`,
  (p) => `${p.name} was tired after a long day as ${withArticle(p.job)}.`,
];

const FILLERS = [
  'The sun was warm.', 'It rained all day.', 'The wind was cold.', 'The sky was clear and blue.',
  'It was a long day.', 'Then night came.', 'The road was quiet.', 'Snow fell in the hills.',
];

/** One paragraph about an animal or a person: a few facts, an event, sometimes a filler. */
export function paragraph(world: World, rng: Rng): string {
  const sentences: string[] = [];
  const count = 3 + rng.nextInt(4);
  const byName = new Map(world.animals.map((a) => [a.name, a]));
  if (rng.nextInt(2) === 0) {
    const a = pick(rng, world.animals);
    for (let i = 0; i < count; i++) {
      const r = rng.nextInt(10);
      if (r < 6) sentences.push(pick(rng, ANIMAL_FACT_SENTENCES)(a));
      else if (r < 9) sentences.push(pick(rng, ANIMAL_EVENTS)(a, pick(rng, world.animals), pick(rng, world.people)));
      else sentences.push(pick(rng, FILLERS));
    }
  } else {
    const p = pick(rng, world.people);
    const pet = byName.get(p.pet)!;
    for (let i = 0; i < count; i++) {
      const r = rng.nextInt(10);
      if (r < 6) sentences.push(pick(rng, PERSON_FACT_SENTENCES)(p, pet));
      else if (r < 8) sentences.push(pick(rng, PERSON_EVENTS)(p, pet, pick(rng, world.people)));
      else if (r < 9) sentences.push(pick(rng, ANIMAL_FACT_SENTENCES)(pet));
      else sentences.push(pick(rng, FILLERS));
    }
  }
  return sentences.join(' ');
}

/** `count` paragraphs from the seed's own stream (pretraining and the held-out sample use different seeds). */
export function corpusParagraphs(world: World, count: number, seed: number): string[] {
  const rng = new Prng(seed, 0xc0a905);
  return Array.from({ length: count }, () => paragraph(world, rng));
}
