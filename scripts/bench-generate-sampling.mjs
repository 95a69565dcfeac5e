// The token choice's own cost per generated token (bench:generate's second
// table): electron/inference/sampling.ts against the way it chose before, a
// sort of the whole vocabulary on every sampled token (kept below as it was,
// so both run on the same logits in the same process). Vocabularies of
// SmolLM2 (49152), Llama 3 (128256) and Qwen2.5 (151936); settings as the
// models' generation_config.json files give them. Two shapes of logits: a
// language model's (Zipf-like, most mass on few tokens) and a flat one (the
// worst case of a nucleus with top-k off: it holds most of the vocabulary).
import { join } from 'node:path';

/** The choice before (sampling.ts until session 13): softmax, a full sort, the nucleus walk, a draw over it. */
function oldSampleToken(logits, { temperature, topP }, rng) {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const probs = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    probs[i] = Math.exp((logits[i] - max) / temperature);
    sum += probs[i];
  }
  for (let i = 0; i < probs.length; i++) probs[i] /= sum;
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  let kept = order;
  if (topP < 1) {
    kept = [];
    let cumulative = 0;
    for (const id of order) {
      kept.push(id);
      cumulative += probs[id];
      if (cumulative >= topP) break;
    }
  }
  let total = 0;
  for (const id of kept) total += probs[id];
  let u = rng.nextFloat() * total;
  for (const id of kept) {
    u -= probs[id];
    if (u < 0) return id;
  }
  return kept[kept.length - 1];
}

export const SAMPLING_VOCABS = [['SmolLM2', 49152], ['Llama 3', 128256], ['Qwen2.5', 151936]];
export const SAMPLING_SETTINGS = [
  { label: 'greedy', temperature: 0, topK: 0, topP: 1 },
  { label: "transformers' defaults once sampling (T 0.7)", temperature: 0.7, topK: 50, topP: 1 },
  { label: 'Llama-3-Instruct (T 0.6, top-p 0.9, top-k 50)', temperature: 0.6, topK: 50, topP: 0.9 },
  { label: 'Qwen2.5-Instruct (T 0.7, top-k 20, top-p 0.8)', temperature: 0.7, topK: 20, topP: 0.8 },
  { label: 'top-k off, top-p 1 (T 0.7)', temperature: 0.7, topK: 0, topP: 1 },
  { label: 'top-k off, top-p 0.9 (T 0.7)', temperature: 0.7, topK: 0, topP: 0.9 },
];

/** Fixed logits of `shape` for a vocabulary of `v` (the ids shuffled: no order to exploit). */
function logitsOf(v, shape, rng) {
  const logits = new Float32Array(v);
  for (let i = 0; i < v; i++) logits[i] = shape === 'flat' ? 8 * (rng.nextFloat() - 0.5) : -1.1 * Math.log(1 + i) + 0.5 * rng.nextFloat();
  for (let i = v - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [logits[i], logits[j]] = [logits[j], logits[i]];
  }
  return logits;
}

/** Milliseconds per token (the best of `rounds` rounds of `tokens` draws, each on a fresh copy as generation has). */
function msPerToken(choose, logits, tokens, rounds) {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const copies = Array.from({ length: tokens }, () => Float32Array.from(logits));
    const t0 = performance.now();
    for (const l of copies) choose(l);
    best = Math.min(best, (performance.now() - t0) / tokens);
  }
  return best;
}

/** Measures the old and the new choice for every vocabulary, shape and setting; `dist` is the built electron folder. */
export async function measureSampling(dist, { tokens = 20, rounds = 3 } = {}) {
  const { sampleToken } = await import(join(dist, 'inference', 'sampling.js'));
  const { Prng } = await import(join(dist, 'random', 'prng.js'));
  const rows = [];
  for (const [model, v] of SAMPLING_VOCABS) {
    for (const shape of ['language model', 'flat']) {
      const logits = logitsOf(v, shape === 'flat' ? 'flat' : 'zipf', new Prng(v));
      for (const s of SAMPLING_SETTINGS) {
        if (shape === 'flat' && s.topK !== 0) continue; // top-k's cost does not depend on the shape
        const rng = new Prng(1);
        const options = { temperature: s.temperature, topK: s.topK, topP: s.topP };
        const newMs = msPerToken((l) => sampleToken(l, options, rng), logits, tokens, rounds);
        const oldMs = msPerToken((l) => oldSampleToken(l, options, rng), logits, tokens, rounds);
        rows.push({ model, vocab: v, shape, setting: s.label, oldMs, newMs, speedup: oldMs / newMs });
        console.log(`sampling ${model} (${v}) ${shape}, ${s.label}: before ${oldMs.toFixed(2)} ms/token, now ${newMs.toFixed(2)} (x${(oldMs / newMs).toFixed(1)})`);
      }
    }
  }
  return rows;
}

/** The markdown table of measureSampling's rows. */
export function samplingMarkdown(rows, threadsNote) {
  return [
    '## Choosing each token (sampling) on the CPU',
    '',
    `The token choice alone, on fixed logits (${threadsNote}): before, every sampled token sorted the whole vocabulary; now top-k is a heap pass`,
    'and the nucleus a selection by mass, and only the kept tokens are sorted. "before" ran the old code (no top-k: it sampled from the whole nucleus).',
    'Greedy is an argmax in both. Flat logits are the worst case of a nucleus with top-k off (it holds most of the vocabulary).',
    '',
    '| vocabulary | logits | settings | before (ms/token) | now (ms/token) | before / now |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.model} (${r.vocab}) | ${r.shape} | ${r.setting} | ${r.oldMs.toFixed(2)} | ${r.newMs.toFixed(2)} | ${r.speedup.toFixed(1)} |`),
    '',
  ].join('\n');
}
