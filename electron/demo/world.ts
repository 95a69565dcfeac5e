// The small synthetic world the demo model is pretrained on: animals with a
// colour, a home and a food, and people with a town, a job and a pet. The
// facts are drawn once from a seeded generator, so the same seed always gives
// the same world; the corpus states them in many phrasings, and the demo's
// fine-tuning task asks about them in a question/answer format the corpus
// never uses. Everything here is ours (no third-party text).
import { Prng } from '../random/prng.js';

export const ANIMALS = [
  'fox', 'cat', 'dog', 'owl', 'bear', 'frog', 'duck', 'goat', 'horse', 'mouse', 'rabbit', 'wolf',
  'deer', 'pig', 'cow', 'sheep', 'hen', 'bee', 'crow', 'lion', 'seal', 'mole', 'bat', 'swan',
  'toad', 'otter', 'badger', 'hare', 'lamb', 'moose', 'snail', 'crab',
] as const;
export const COLORS = ['red', 'brown', 'grey', 'white', 'black', 'yellow', 'green', 'orange'] as const;
export const HOMES = ['forest', 'river', 'farm', 'hill', 'lake', 'cave', 'field', 'garden', 'barn', 'pond', 'meadow', 'marsh'] as const;
export const FOODS = ['berries', 'seeds', 'fish', 'grass', 'apples', 'nuts', 'honey', 'corn', 'carrots', 'bread', 'leaves', 'worms'] as const;

export const PEOPLE = [
  'Mira', 'Tom', 'Ada', 'Leo', 'Nina', 'Sam', 'Ivy', 'Ben', 'Zoe', 'Max', 'Lily', 'Owen',
  'Ella', 'Finn', 'Rosa', 'Hugo', 'Maya', 'Jack', 'Iris', 'Noah', 'Luna', 'Eli', 'Cora', 'Theo',
] as const;
export const TOWNS = ['Oakvale', 'Riverton', 'Stonebridge', 'Millbrook', 'Ashford', 'Pinecrest', 'Fairhaven', 'Westmoor'] as const;
export const JOBS = ['baker', 'farmer', 'teacher', 'doctor', 'painter', 'fisher', 'builder', 'singer', 'tailor', 'miller'] as const;

export interface Animal {
  name: string;
  color: string;
  home: string;
  food: string;
}

export interface Person {
  name: string;
  town: string;
  job: string;
  pet: string;
}

export interface World {
  animals: Animal[];
  people: Person[];
}

function pick<T>(rng: Prng, items: readonly T[]): T {
  return items[rng.nextInt(items.length)];
}

/** The world of a seed: every animal and person gets its facts. */
export function makeWorld(seed: number): World {
  const rng = new Prng(seed, 0x3041d);
  const animals = ANIMALS.map((name) => ({ name, color: pick(rng, COLORS), home: pick(rng, HOMES), food: pick(rng, FOODS) }));
  const people = PEOPLE.map((name) => ({ name, town: pick(rng, TOWNS), job: pick(rng, JOBS), pet: pick(rng, ANIMALS) }));
  return { animals, people };
}

/** One fact, as the fine-tuning task asks about it. */
export interface Fact {
  /** "animal.color", "person.town", ... */
  relation: FactRelation;
  subject: string;
  answer: string;
}

export const FACT_RELATIONS = ['animal.color', 'animal.home', 'animal.food', 'person.town', 'person.job', 'person.pet'] as const;
export type FactRelation = (typeof FACT_RELATIONS)[number];

/** Every fact of the world, in a fixed order (animals first, then people). */
export function worldFacts(world: World): Fact[] {
  const facts: Fact[] = [];
  for (const a of world.animals) {
    facts.push({ relation: 'animal.color', subject: a.name, answer: a.color });
    facts.push({ relation: 'animal.home', subject: a.name, answer: a.home });
    facts.push({ relation: 'animal.food', subject: a.name, answer: a.food });
  }
  for (const p of world.people) {
    facts.push({ relation: 'person.town', subject: p.name, answer: p.town });
    facts.push({ relation: 'person.job', subject: p.name, answer: p.job });
    facts.push({ relation: 'person.pet', subject: p.name, answer: p.pet });
  }
  return facts;
}
