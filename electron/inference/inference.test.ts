// Evaluation and generation on the real engine with tiny random models.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraTensorShapes } from '../adapters/peft.js';
import type { TinyModel } from '../testing/tiny-model.js';
import { attachAdapter, openSession, type ModelSession } from '../session.js';
import { saveAdapterFolder } from '../training/adapter-files.js';
import { countTrainedTokens, parseJsonl } from '../training/data.js';
import { Prng } from '../random/prng.js';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { evaluateExamples } from './eval.js';
import { generate } from './generate.js';
import { argmax } from './sampling.js';

describe('evaluation', () => {
  let model: TinyModel;
  let session: ModelSession;

  beforeAll(async () => {
    model = await tinyModel({ seed: 11 });
    session = await openSession(model.dir, { threads: 2 });
  });
  afterAll(() => session?.dispose());

  const rows = [
    { input_ids: [5, 6, 7, 8, 9, 10, 11] },
    { input_ids: [12, 13, 14], labels: [-100, 13, 14] },
    { input_ids: [20, 21, 22, 23, 24], labels: [20, -100, -100, 23, 24] },
    { input_ids: [30] },
  ];

  it('is the token-weighted mean over every label token, whatever the batching', async () => {
    const examples = parseJsonl(rows.map((r) => JSON.stringify(r)).join('\n'), 'rows.jsonl', session.tokenizer, { seqLen: 64, vocabSize: 320 });
    const expectedTokens = examples.reduce((n, e) => n + countTrainedTokens(e.labels), 0);
    expect(expectedTokens).toBe(6 + 2 + 2 + 0);
    const one = await evaluateExamples(session.engine, examples, 1);
    const all = await evaluateExamples(session.engine, examples, 4);
    expect(one.tokens).toBe(expectedTokens);
    expect(all.tokens).toBe(expectedTokens);
    expect(Math.abs(one.loss - all.loss)).toBeLessThan(1e-6 * one.loss);
    // by hand: sum of per-row loss sums / total tokens
    let sum = 0;
    for (const e of examples) {
      if (countTrainedTokens(e.labels) === 0) continue;
      const r = await evaluateExamples(session.engine, [e], 1);
      sum += r.loss * r.tokens;
    }
    expect(Math.abs(sum / expectedTokens - one.loss)).toBeLessThan(1e-6 * one.loss);
    // a random N(0, 0.02) model predicts nearly uniformly: loss ~ ln(vocab)
    expect(Math.abs(one.loss - Math.log(320))).toBeLessThan(0.1);
    expect(one.perplexity).toBeCloseTo(Math.exp(one.loss), 9);
  });

  it('export then import of an adapter gives the identical loss', async () => {
    const dir = tempDir('roundtrip');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 16));
    const lora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'gate_proj'] as const, layers: null, init: 'default' as const };
    const trained = await openSession(model.dir, { threads: 2 });
    try {
      trained.engine.setupLora({ ...lora, targets: [...lora.targets], seed: 1 });
      // give B non-zero values, as training would
      const rng = new Prng(9);
      for (const { name, shape } of loraTensorShapes(model.spec, { ...lora, targets: [...lora.targets] })) {
        if (name.includes('lora_B')) trained.engine.setTensor(name, Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.2));
      }
      const examples = parseJsonl(cycleRows(6, 16).map((r) => JSON.stringify(r)).join('\n'), data, trained.tokenizer, { seqLen: 64, vocabSize: 320 });
      const before = await evaluateExamples(trained.engine, examples, 2);
      const base = await evaluateExamples(session.engine, examples, 2);
      expect(Math.abs(before.loss - base.loss)).toBeGreaterThan(1e-3); // the adapter matters
      await saveAdapterFolder(join(dir, 'adapter'), { engine: trained.engine, spec: model.spec, lora: { ...lora, targets: [...lora.targets] }, baseModel: model.dir });
      const r = await cli(['eval', '--model', model.dir, '--adapter', join(dir, 'adapter'), '--data', data, '--batch-size', '2', '--threads', '2']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(before);
    } finally {
      trained.dispose();
    }
  });
});

describe('generation', () => {
  let model: TinyModel;
  let session: ModelSession;

  beforeAll(async () => {
    model = await tinyModel({ seed: 12, vocab: 300 });
    session = await openSession(model.dir, { threads: 2 });
  });
  afterAll(() => session?.dispose());

  const greedy = { temperature: 0, topP: 1, seed: 0, stopTokenIds: [] as number[], maxPositions: 512 };

  // transformers' warpers written out in float64 for the sampled-draw references below (logits_process.py)
  const softmax64 = (s: Float64Array) => {
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / sum);
  };
  /** TopKLogitsWarper then TopPLogitsWarper on logits already over the temperature, in place */
  const topKTopP64 = (l: Float64Array, topK: number, topP: number) => {
    if (topK > 0) {
      const kth = [...l].sort((a, b) => b - a)[topK - 1];
      for (let i = 0; i < l.length; i++) if (l[i] < kth) l[i] = Number.NEGATIVE_INFINITY;
    }
    if (topP < 1) {
      const p = softmax64(l);
      const ascending = [...p.keys()].sort((a, b) => p[a] - p[b] || b - a);
      let cumulative = 0;
      for (let r = 0; r < ascending.length - 1; r++) {
        cumulative += p[ascending[r]];
        if (cumulative <= 1 - topP) l[ascending[r]] = Number.NEGATIVE_INFINITY;
      }
    }
  };
  /** a draw from what the warpers left, over ascending ids */
  const draw64 = (l: Float64Array, rng: Prng) => {
    const final = softmax64(l);
    let u = rng.nextFloat();
    for (let i = 0; i < final.length; i++) {
      if (final[i] === 0) continue;
      u -= final[i];
      if (u < 0) return i;
    }
    return -1;
  };

  it('temperature 0 picks the argmax of the full-sequence logits at every step', async () => {
    const prompt = session.tokenizer.encode('the cat sat');
    const { tokens, stoppedBy } = await generate(session.engine, prompt, { ...greedy, maxNewTokens: 12 });
    expect(tokens).toHaveLength(12);
    expect(stoppedBy).toBe('length');
    // Recompute each step from scratch (fresh cache, whole prefix at once).
    for (let k = 0; k < tokens.length; k++) {
      session.engine.resetCache(prompt.length + k + 1);
      const logits = await session.engine.decode(Int32Array.from([...prompt, ...tokens.slice(0, k)]));
      expect(logits).toHaveLength(300);
      expect(argmax(logits), `step ${k}`).toBe(tokens[k]);
    }
    const again = await generate(session.engine, prompt, { ...greedy, maxNewTokens: 12 });
    expect(again.tokens).toEqual(tokens);
  });

  it('stops at an end-of-sequence token and leaves it out', async () => {
    const prompt = session.tokenizer.encode('a');
    const { tokens } = await generate(session.engine, prompt, { ...greedy, maxNewTokens: 6 });
    const stop = tokens[3];
    const cut = await generate(session.engine, prompt, { ...greedy, maxNewTokens: 6, stopTokenIds: [stop] });
    expect(cut.stoppedBy).toBe('eos');
    expect(cut.tokens).toEqual(tokens.slice(0, tokens.indexOf(stop)));
  });

  it('sampling is reproducible for a seed and explains a budget beyond the model', async () => {
    const prompt = session.tokenizer.encode('hello');
    const opts = { temperature: 1.5, topP: 0.95, stopTokenIds: [], maxPositions: 512, maxNewTokens: 10 };
    const a = await generate(session.engine, prompt, { ...opts, seed: 3 });
    const b = await generate(session.engine, prompt, { ...opts, seed: 3 });
    const c = await generate(session.engine, prompt, { ...opts, seed: 4 });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).not.toEqual(c.tokens);
    await expect(generate(session.engine, prompt, { ...opts, seed: 1, maxNewTokens: 600 })).rejects.toThrow(/exceed the model's 512 positions/);
  });

  /**
   * transformers' greedy search with its RepetitionPenaltyLogitsProcessor and
   * then its NoRepeatNGramLogitsProcessor (generation/utils.py appends them in
   * that order), on the engine's logits of a fresh whole-sequence decode at
   * every step: each distinct id of the prompt and the answer so far, logit
   * < 0 multiplied by the penalty, else divided; then, with `ngram` ids or
   * more, every window of `ngram` ids whose first ngram - 1 equal the last
   * ngram - 1 bans its last id (-inf); then argmax. Stops at `stop`.
   */
  async function greedyWithPenalty(prompt: number[], penalty: number, count: number, stop: number[] = [], ngram = 0): Promise<number[]> {
    const answer: number[] = [];
    while (answer.length < count) {
      session.engine.resetCache(prompt.length + answer.length + 1);
      const ids = [...prompt, ...answer];
      const l = Float64Array.from(await session.engine.decode(Int32Array.from(ids)));
      for (const id of new Set(ids)) l[id] = l[id] < 0 ? l[id] * penalty : l[id] / penalty;
      if (ngram > 0 && ids.length >= ngram) {
        const suffix = ids.slice(ids.length - ngram + 1);
        for (let start = 0; start + ngram <= ids.length; start++) {
          if (suffix.every((id, j) => ids[start + j] === id)) l[ids[start + ngram - 1]] = Number.NEGATIVE_INFINITY;
        }
      }
      const next = argmax(l);
      if (stop.includes(next)) break;
      answer.push(next);
    }
    return answer;
  }

  /** Whether some run of `n` ids ending at or after `from` occurred earlier in `ids` (a run the answer repeated). */
  function repeatsAnNgram(ids: number[], n: number, from = 0): boolean {
    const seen = new Set<string>();
    for (let start = 0; start + n <= ids.length; start++) {
      const key = ids.slice(start, start + n).join(',');
      if (seen.has(key) && start + n - 1 >= from) return true;
      seen.add(key);
    }
    return false;
  }

  it('no_repeat_ngram_size bans as transformers does, in greedy decoding too, after the repetition penalty', async () => {
    const prompt = session.tokenizer.encode('the cat sat on the mat, the cat');
    const plain = await generate(session.engine, prompt, { ...greedy, maxNewTokens: 24 });
    // the tiny model repeats itself: a ban has something to do
    expect(repeatsAnNgram([...prompt, ...plain.tokens], 2, prompt.length)).toBe(true);
    for (const [n, penalty] of [[2, 1], [3, 1], [1, 1], [2, 1.3]] as const) {
      const { tokens } = await generate(session.engine, prompt, { ...greedy, repetitionPenalty: penalty, noRepeatNgramSize: n, maxNewTokens: 24 });
      expect(tokens, `n ${n}, penalty ${penalty}`).toEqual(await greedyWithPenalty(prompt, penalty, 24, [], n));
      expect(repeatsAnNgram([...prompt, ...tokens], n, prompt.length), `n ${n}: the answer repeats no ${n}-gram`).toBe(false);
    }
    const banned = await generate(session.engine, prompt, { ...greedy, noRepeatNgramSize: 2, maxNewTokens: 24 });
    expect(banned.tokens).not.toEqual(plain.tokens);
  });

  it('min_p samples among the tokens transformers keeps (after temperature), with the same draws as a float64 reference', async () => {
    const prompt = session.tokenizer.encode('the cat');
    for (const o of [{ temperature: 1, topK: 0, topP: 1, minP: 0.5 }, { temperature: 0.5, topK: 50, topP: 0.95, minP: 0.7 }]) {
      const options = { ...o, seed: 5, stopTokenIds: [] as number[], maxPositions: 512, maxNewTokens: 12 };
      const { tokens } = await generate(session.engine, prompt, options);
      // min-p had something to do: without it the same seed draws otherwise
      expect(tokens, `${JSON.stringify(o)} without min-p`).not.toEqual((await generate(session.engine, prompt, { ...options, minP: 0 })).tokens);
      // the reference: fresh decode; temperature, top-k, top-p, min-p as transformers' warpers in float64; a draw over ascending ids
      const rng = new Prng(5);
      const want: number[] = [];
      while (want.length < options.maxNewTokens) {
        session.engine.resetCache(prompt.length + want.length + 1);
        const l = Float64Array.from(await session.engine.decode(Int32Array.from([...prompt, ...want]))).map((x) => x / o.temperature);
        topKTopP64(l, o.topK, o.topP);
        // MinPLogitsWarper
        const p = softmax64(l);
        const top = Math.max(...p);
        for (let i = 0; i < l.length; i++) if (p[i] < o.minP * top) l[i] = Number.NEGATIVE_INFINITY;
        want.push(draw64(l, rng));
      }
      expect(tokens, JSON.stringify(o)).toEqual(want);
    }
  });

  it('typical_p, epsilon_cutoff and eta_cutoff sample among the tokens transformers keeps, with the same draws as a float64 reference', async () => {
    const prompt = session.tokenizer.encode('the cat');
    type Case = { temperature: number; topK: number; topP: number; typicalP: number; epsilonCutoff: number; etaCutoff: number };
    const cases: Case[] = [
      { temperature: 1, topK: 0, topP: 1, typicalP: 0.5, epsilonCutoff: 0, etaCutoff: 0 },
      { temperature: 0.3, topK: 0, topP: 1, typicalP: 1, epsilonCutoff: 0.004, etaCutoff: 0 },
      { temperature: 0.3, topK: 0, topP: 1, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0.1 },
      // after top-k and top-p, all three in transformers' order
      { temperature: 0.5, topK: 120, topP: 0.95, typicalP: 0.9, epsilonCutoff: 0.003, etaCutoff: 0.05 },
    ];
    /** transformers' warpers in float64 (logits_process.py), written out here; then a draw over ascending ids */
    const reference = async (o: Case, count: number): Promise<number[]> => {
      const rng = new Prng(5);
      const want: number[] = [];
      while (want.length < count) {
        session.engine.resetCache(prompt.length + want.length + 1);
        const l = Float64Array.from(await session.engine.decode(Int32Array.from([...prompt, ...want]))).map((x) => x / o.temperature);
        topKTopP64(l, o.topK, o.topP);
        if (o.typicalP < 1) {
          // TypicalLogitsWarper: sort by |-log p - H|, last_ind = count of cumsum < mass (clamped), drop the less typical
          const p = softmax64(l);
          const logp = p.map((x) => Math.log(x));
          const h = -p.reduce((a, x, i) => (x > 0 ? a + x * logp[i] : a), 0);
          const shifted = logp.map((x) => Math.abs(-x - h));
          const order = [...shifted.keys()].sort((a, b) => shifted[a] - shifted[b] || a - b);
          let cumulative = 0;
          let lastInd = 0;
          for (const i of order) if ((cumulative += p[i]) < o.typicalP) lastInd++;
          const cut = shifted[order[Math.min(lastInd, order.length - 1)]];
          for (let i = 0; i < l.length; i++) if (shifted[i] > cut) l[i] = Number.NEGATIVE_INFINITY;
        }
        // EpsilonLogitsWarper, then EtaLogitsWarper (its floor from the entropy of what epsilon left); the top score stays
        for (const floorOf of [
          (_: Float64Array) => o.epsilonCutoff,
          (p: Float64Array) => Math.min(o.etaCutoff, Math.sqrt(o.etaCutoff) * Math.exp(p.reduce((a, x) => (x > 0 ? a + x * Math.log(x) : a), 0))),
        ]) {
          const p = softmax64(l);
          const floor = floorOf(p);
          const top = Math.max(...l);
          if (floor > 0) for (let i = 0; i < l.length; i++) if (p[i] < floor && l[i] < top) l[i] = Number.NEGATIVE_INFINITY;
        }
        want.push(draw64(l, rng));
      }
      return want;
    };
    for (const o of cases) {
      const options = { ...o, seed: 5, stopTokenIds: [] as number[], maxPositions: 512, maxNewTokens: 12 };
      const { tokens } = await generate(session.engine, prompt, options);
      // each had something to do: without it the same seed draws otherwise
      const off = { typicalP: 1, epsilonCutoff: 0, etaCutoff: 0 };
      expect(tokens, `${JSON.stringify(o)} without typical-p and the cutoffs`).not.toEqual((await generate(session.engine, prompt, { ...options, ...off })).tokens);
      expect(tokens, JSON.stringify(o)).toEqual(await reference(o, options.maxNewTokens));
    }
  });

  it('the repetition penalty changes greedy decoding as transformers applies it (prompt and answer, each id once)', async () => {
    const prompt = session.tokenizer.encode('the cat sat on the mat, the cat');
    const plain = await generate(session.engine, prompt, { ...greedy, maxNewTokens: 16 });
    for (const penalty of [1.3, 2]) {
      const { tokens } = await generate(session.engine, prompt, { ...greedy, repetitionPenalty: penalty, maxNewTokens: 16 });
      expect(tokens, `penalty ${penalty}`).toEqual(await greedyWithPenalty(prompt, penalty, 16));
      expect(tokens, `penalty ${penalty} changes the answer`).not.toEqual(plain.tokens);
    }
  });

  it("the generate command takes generation_config.json's repetition penalty and no_repeat_ngram_size, and the flags that replace them", async () => {
    // the same weights in a folder of its own, its generation_config.json as Qwen2.5-Instruct's (greedy here) with an n-gram ban
    const qwenLike = await tinyModel({ seed: 12, vocab: 300 });
    writeFileSync(join(qwenLike.dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 1, do_sample: false, repetition_penalty: 1.05, top_k: 20, top_p: 0.8, min_p: 0.05, no_repeat_ngram_size: 2 }));
    const prompt = 'the cat sat on the mat, the cat';
    const expected = await greedyWithPenalty(session.tokenizer.encode(prompt), 1.05, 16, [1], 2);
    expect(expected, 'the ban changes this answer').not.toEqual(await greedyWithPenalty(session.tokenizer.encode(prompt), 1.05, 16, [1]));
    const r = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '16', '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(session.tokenizer.decode(expected, { skipSpecialTokens: true }) + '\n');
    expect(r.stderr).toContain('note: greedy decoding, repetition penalty 1.05, no repeated 2-grams\n');
    // both are applied now: no notice names them as ignored
    expect(r.stderr).not.toContain('PEFT Studio does not');
    // --no-repeat-ngram-size 0 turns the ban off, --no-repeat-ngram-size 3 makes it another
    const noBan = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '16', '--no-repeat-ngram-size', '0', '--threads', '2']);
    expect(noBan.stdout).toBe(session.tokenizer.decode(await greedyWithPenalty(session.tokenizer.encode(prompt), 1.05, 16, [1]), { skipSpecialTokens: true }) + '\n');
    const three = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '16', '--no-repeat-ngram-size', '3', '--threads', '2']);
    expect(three.stdout).toBe(session.tokenizer.decode(await greedyWithPenalty(session.tokenizer.encode(prompt), 1.05, 16, [1], 3), { skipSpecialTokens: true }) + '\n');
    // --repetition-penalty 1 and --no-repeat-ngram-size 0 turn both off: the plain greedy answer
    const off = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '16', '--repetition-penalty', '1', '--no-repeat-ngram-size', '0', '--threads', '2']);
    const plain = await generate(session.engine, session.tokenizer.encode(prompt), { ...greedy, maxNewTokens: 16, stopTokenIds: [1] });
    expect(off.stdout).toBe(session.tokenizer.decode(plain.tokens, { skipSpecialTokens: true }) + '\n');
    expect(off.stdout).not.toBe(r.stdout);
    // top-k / top-p / min-p at temperature 0 are said to do nothing
    const unused = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '2', '--top-p', '0.5', '--threads', '2']);
    expect(unused.stderr).toContain('note: greedy decoding, repetition penalty 1.05, no repeated 2-grams (--top-p applies only when sampling: pass --temperature above 0)\n');
    const unused2 = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '2', '--top-k', '5', '--min-p', '0.2', '--threads', '2']);
    expect(unused2.stderr).toContain('(--top-k and --min-p apply only when sampling: pass --temperature above 0)\n');
    // sampling: the file's min_p is used and said
    const sampled = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--max-new-tokens', '4', '--temperature', '0.9', '--threads', '2']);
    expect(sampled.stderr).toContain('note: sampling at temperature 0.9, top-k 20, top-p 0.8, min-p 0.05, repetition penalty 1.05, no repeated 2-grams, seed 42\n');
    // a flag out of range is refused by the flag's name
    const bad = await cli(['generate', '--model', qwenLike.dir, '--prompt', prompt, '--min-p', '1.5', '--threads', '2']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--min-p/);
  });

  it("the generate command takes generation_config.json's typical_p, epsilon_cutoff and eta_cutoff when sampling, refuses values their warpers refuse, by the flag or the file and key", async () => {
    const recipe = await tinyModel({ seed: 12, vocab: 300 });
    const file = join(recipe.dir, 'generation_config.json');
    writeFileSync(file, JSON.stringify({ eos_token_id: 1, do_sample: true, temperature: 0.9, top_k: 0, typical_p: 0.7, epsilon_cutoff: 0.002, eta_cutoff: 0.003 }));
    const prompt = 'the cat';
    const run = (...flags: string[]) => cli(['generate', '--model', recipe.dir, '--prompt', prompt, '--max-new-tokens', '8', '--threads', '2', ...flags]);
    const fromFile = await run();
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stderr).toContain('note: sampling at temperature 0.9, no top-k, no top-p, typical-p 0.7, epsilon cutoff 0.002, eta cutoff 0.003, seed 42\n');
    expect(fromFile.stderr).not.toContain('PEFT Studio does not'); // applied now: not named as ignored
    // the answer is generate()'s with the same settings, here in this process
    const ids = session.tokenizer.encode(prompt);
    const same = { temperature: 0.9, topK: 0, topP: 1, typicalP: 0.7, epsilonCutoff: 0.002, etaCutoff: 0.003, seed: 42, stopTokenIds: [1], maxPositions: 512, maxNewTokens: 8 };
    expect(fromFile.stdout).toBe(session.tokenizer.decode((await generate(session.engine, ids, same)).tokens, { skipSpecialTokens: true }) + '\n');
    // the flags replace the file's; 1 and 0 turn them off
    const off = await run('--typical-p', '1', '--epsilon-cutoff', '0', '--eta-cutoff', '0');
    expect(off.stderr).toContain('note: sampling at temperature 0.9, no top-k, no top-p, seed 42\n');
    expect(off.stdout).toBe(session.tokenizer.decode((await generate(session.engine, ids, { ...same, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0 })).tokens, { skipSpecialTokens: true }) + '\n');
    expect(off.stdout, "the file's settings changed the answer").not.toBe(fromFile.stdout);
    // greedy: they do nothing, and the flags given are said to
    const greedyRun = await run('--temperature', '0', '--typical-p', '0.5', '--eta-cutoff', '0.01');
    expect(greedyRun.stderr).toContain('note: greedy decoding (--typical-p and --eta-cutoff apply only when sampling: pass --temperature above 0)\n');
    // out of the warpers' range: by the flag
    for (const [flag, value, words] of [['--typical-p', '0', '> 0 and <= 1'], ['--epsilon-cutoff', '1', '>= 0 and < 1'], ['--eta-cutoff', '-0.1', '>= 0 and < 1']]) {
      const bad = await run(flag, value);
      expect(bad.code, `${flag} ${value}`).not.toBe(0);
      expect(bad.stderr).toContain(`${flag} expects a number ${words}, got ${value}`);
    }
    // in the file: by the file and key, when sampling would use it, with the flag that replaces it
    writeFileSync(file, JSON.stringify({ eos_token_id: 1, do_sample: true, temperature: 0.9, typical_p: 1.5 }));
    const badFile = await run();
    expect(badFile.code).not.toBe(0);
    expect(badFile.stderr).toContain(`${file}: typical_p 1.5 must be a number > 0 and <= 1; fix the file (or remove typical_p), or pass --typical-p`);
    expect((await run('--typical-p', '0.9')).code).toBe(0);
    expect((await run('--temperature', '0')).code).toBe(0); // greedy decoding does not use it
  });

  it('a bad value in generation_config.json is named with its file and key; the flag that replaces it works', async () => {
    const bad = await tinyModel({ seed: 12, vocab: 300 });
    const file = join(bad.dir, 'generation_config.json');
    writeFileSync(file, JSON.stringify({ eos_token_id: 1, do_sample: true, temperature: 0.7, top_p: 1.5 }));
    const r = await cli(['generate', '--model', bad.dir, '--prompt', 'the cat', '--max-new-tokens', '3', '--threads', '2']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${file}: top_p 1.5 must be a number >= 0 and <= 1; fix the file (or remove top_p), or pass --top-p`);
    const fixed = await cli(['generate', '--model', bad.dir, '--prompt', 'the cat', '--max-new-tokens', '3', '--top-p', '0.9', '--threads', '2']);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stderr).toContain('note: sampling at temperature 0.7, top-k 50, top-p 0.9, seed 42\n');
  });

  it('a prompt that fills the positions is told to shorten, without naming a --max-new-tokens it was not given', async () => {
    const small = await tinyModel({ seed: 12, vocab: 300, maxPosition: 8 });
    const r = await cli(['generate', '--model', small.dir, '--prompt', 'the cat sat on the mat', '--threads', '2']);
    expect(r.code).not.toBe(0);
    const tokens = session.tokenizer.encode('the cat sat on the mat').length;
    expect(tokens).toBeGreaterThan(8);
    expect(r.stderr).toContain(`the prompt (${tokens} tokens) leaves no room for an answer in the model's 8 positions: shorten the prompt`);
    expect(r.stderr).not.toContain('--max-new-tokens');
  });

  it('the generate command prints the greedy continuation, with and without an adapter', async () => {
    const prompt = 'the cat';
    const ids = session.tokenizer.encode(prompt);
    const { tokens } = await generate(session.engine, ids, { ...greedy, maxNewTokens: 8, stopTokenIds: [1] });
    const r = await cli(['generate', '--model', model.dir, '--prompt', prompt, '--max-new-tokens', '8', '--temperature', '0', '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(session.tokenizer.decode(tokens, { skipSpecialTokens: true }) + '\n');
    // a zero adapter changes nothing
    const dir = tempDir('gen');
    const withAdapter = await openSession(model.dir, { threads: 2 });
    try {
      const lora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj' as const], layers: null, init: 'default' as const };
      withAdapter.engine.setupLora({ ...lora, seed: 1 });
      await saveAdapterFolder(join(dir, 'zero'), { engine: withAdapter.engine, spec: model.spec, lora, baseModel: model.dir });
    } finally {
      withAdapter.dispose();
    }
    const z = await cli(['generate', '--model', model.dir, '--adapter', join(dir, 'zero'), '--prompt', prompt, '--max-new-tokens', '8', '--temperature', '0', '--threads', '2']);
    expect(z.stdout).toBe(r.stdout);
  });

  it('attachAdapter refuses an adapter for another model with a clear message', async () => {
    const other = await tinyModel({ seed: 1, hidden: 32, heads: 2, kvHeads: 1 });
    const dir = tempDir('gen');
    const s = await openSession(other.dir, { threads: 1 });
    const lora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj' as const], layers: null, init: 'default' as const };
    s.engine.setupLora({ ...lora, seed: 1 });
    await saveAdapterFolder(join(dir, 'small'), { engine: s.engine, spec: other.spec, lora, baseModel: other.dir });
    s.dispose();
    const fresh = await openSession(model.dir, { threads: 1 });
    try {
      await expect(attachAdapter(fresh.engine, fresh.folder, join(dir, 'small'), 0)).rejects.toThrow(/has shape \[2, 32\] but this model and r = 2 need \[2, 64\]/);
    } finally {
      fresh.dispose();
    }
  });
});
