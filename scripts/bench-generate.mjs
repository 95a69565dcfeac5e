#!/usr/bin/env node
// npm run bench:generate — generation speed on the CPU (the Try page, `peft-studio
// generate`), ours against llama.cpp itself as the reference, on the same
// weights: a random model shaped like SmolLM2-135M (the bench:cpu shape),
// written as a Hugging Face folder for our engine and converted to GGUF by our
// exporter for llama.cpp (libllama from scripts/reference/llama-cpp, run by its
// probe in a child process). Both sides: the same thread count, a prompt of
// PROMPT tokens as one batch (prefill), then GEN tokens one at a time through
// the KV cache (decode), the same token ids. This machine's speed drifts, so
// the two sides alternate for ROUNDS rounds (each of two passes) and the best
// of each side counts.
// llama.cpp runs with its defaults (F16 KV cache, flash attention auto), as
// llama-cli does; ours keeps its KV cache in fp32.
// Then the cost of choosing each token from the logits (greedy, sampled: see
// bench-generate-sampling.mjs), ours now against the full sort it replaced.
// Needs `npm run build` (it runs the built dist/) and `npm run reference:llama-cpp`;
// `--sampling-only` measures the token choice alone and keeps the engine rows
// of the last generate.json (no llama.cpp needed).
// Results: bench/results/generate.json and generate.md.
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', 'electron', p);
const { measureSampling, samplingMarkdown } = await import('./bench-generate-sampling.mjs');
const samplingOnly = process.argv.includes('--sampling-only');
const results = join(root, 'bench', 'results');
const { writeTinyModel } = await import(dist('testing/tiny-model.js'));
const { openLlamaCpp } = await import(dist('testing/llama-cpp.js'));
const { writeGgufModel } = await import(dist('export/gguf-model.js'));
const { openModelFolder } = await import(dist('models/folder.js'));
const { createEngine } = await import(dist('session.js'));
const { loadAddon } = await import(dist('engine/load.js'));

const threads = Number(process.env.BENCH_THREADS ?? cpus().length);
const PROMPT = 128;
const GEN = 64;
const ROUNDS = 3;
const SHAPE = { hidden: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536, vocab: 49152, tie: true, maxPosition: 2048 };

const previous = existsSync(join(results, 'generate.json')) ? JSON.parse(readFileSync(join(results, 'generate.json'), 'utf8')) : null;
if (samplingOnly && !previous) {
  console.error('bench:generate --sampling-only: no bench/results/generate.json to keep the engine rows of; run bench:generate in full once');
  process.exit(1);
}
const rows = samplingOnly ? previous.rows : await measureEngines();
const samplingRows = await measureSampling(join(root, 'dist', 'electron'));

/** Ours and llama.cpp, prefill and decode, for F32 and F16 weights. */
async function measureEngines() {
  const availability = await openLlamaCpp();
  if (!availability.available) {
    console.error(`bench:generate: ${availability.reason}`);
    process.exit(1);
  }
  const { llamaCpp } = availability;

  /** Fixed pseudo-random token ids (the same for both sides). */
  function tokens(count, seed) {
    let x = seed;
    return Array.from({ length: count }, () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return 3 + (x % (SHAPE.vocab - 3));
    });
  }
  const prompt = tokens(PROMPT, 1);
  const gen = tokens(GEN, 2);

  async function ours(modelDir) {
    const folder = await openModelFolder(modelDir);
    const engine = createEngine(loadAddon(), folder, { threads });
    let prefillMs = Infinity;
    let decodeMs = Infinity;
    try {
      for (let pass = 0; pass < 2; pass++) {
        engine.resetCache(PROMPT + GEN);
        const t0 = performance.now();
        await engine.decode(Int32Array.from(prompt));
        const t1 = performance.now();
        for (const t of gen) await engine.decode(Int32Array.of(t));
        const t2 = performance.now();
        prefillMs = Math.min(prefillMs, t1 - t0);
        decodeMs = Math.min(decodeMs, t2 - t1);
      }
    } finally {
      engine.dispose();
    }
    return { prefillMs, decodeMs };
  }

  const perSecond = (count, ms) => (count * 1000) / ms;
  const work = mkdtempSync(join(tmpdir(), 'ps-bench-generate-'));
  const rows = [];
  try {
    for (const [dtype, ggufType] of [['F32', 'f32'], ['F16', 'f16']]) {
      console.log(`bench:generate: writing a SmolLM2-135M-shaped ${dtype} model`);
      const model = await writeTinyModel(join(work, dtype), { ...SHAPE, dtype, seed: 7 });
      const file = join(work, `${dtype}.gguf`);
      await writeGgufModel({ modelDir: model.dir, outFile: file, type: ggufType });
      const a = { prefillMs: Infinity, decodeMs: Infinity };
      const b = { prefillMs: Infinity, decodeMs: Infinity };
      for (let round = 0; round < ROUNDS; round++) {
        const x = await ours(model.dir);
        const y = await llamaCpp.speed(file, prompt, gen, threads);
        a.prefillMs = Math.min(a.prefillMs, x.prefillMs);
        a.decodeMs = Math.min(a.decodeMs, x.decodeMs);
        b.prefillMs = Math.min(b.prefillMs, y.prefillMs);
        b.decodeMs = Math.min(b.decodeMs, y.decodeMs);
      }
      const row = {
        weights: dtype,
        ours: { prefillTokensPerSecond: perSecond(PROMPT, a.prefillMs), decodeTokensPerSecond: perSecond(GEN, a.decodeMs) },
        llamaCpp: { prefillTokensPerSecond: perSecond(PROMPT, b.prefillMs), decodeTokensPerSecond: perSecond(GEN, b.decodeMs) },
      };
      row.prefillRatio = row.ours.prefillTokensPerSecond / row.llamaCpp.prefillTokensPerSecond;
      row.decodeRatio = row.ours.decodeTokensPerSecond / row.llamaCpp.decodeTokensPerSecond;
      rows.push(row);
      console.log(`${dtype}: prefill ours ${row.ours.prefillTokensPerSecond.toFixed(1)} tok/s, llama.cpp ${row.llamaCpp.prefillTokensPerSecond.toFixed(1)} (x${row.prefillRatio.toFixed(2)}); ` +
        `decode ours ${row.ours.decodeTokensPerSecond.toFixed(1)} tok/s, llama.cpp ${row.llamaCpp.decodeTokensPerSecond.toFixed(1)} (x${row.decodeRatio.toFixed(2)})`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

mkdirSync(results, { recursive: true });
const now = { date: new Date().toISOString(), cpu: cpus()[0]?.model ?? 'unknown' };
// --sampling-only keeps the engine rows with the date, CPU and threads they were measured on
const engineRun = samplingOnly ? { date: previous.date, cpu: previous.cpu, threads: previous.threads } : { ...now, threads };
const report = {
  ...engineRun, shape: SHAPE, promptTokens: PROMPT, generatedTokens: GEN, reference: 'llama.cpp (libllama of @node-llama-cpp/linux-x64 3.22.1), default context: F16 KV cache, flash attention auto', rows,
  sampling: { ...now, note: 'the token choice alone (one thread, JavaScript), ms per token: before = the full sort it replaced', rows: samplingRows },
};
writeFileSync(join(results, 'generate.json'), JSON.stringify(report, null, 2) + '\n');
const md = [
  `# Generation speed on the CPU, ours vs llama.cpp (${report.date.slice(0, 10)})`,
  '',
  `${report.cpu}, ${report.threads} threads. A random model shaped like SmolLM2-135M (hidden 576, 30 layers, 9/3 heads, vocab 49152, tied embeddings);`,
  `the same weights as a Hugging Face folder (ours) and as our GGUF export (llama.cpp). Prompt of ${PROMPT} tokens as one batch, then ${GEN} tokens one at a time;`,
  `the same token ids; the two sides alternate for ${ROUNDS} rounds of two passes, the best of each counts. llama.cpp with its defaults (F16 KV cache, flash attention auto); ours with an fp32 KV cache.`,
  '',
  '| weights | prefill ours (tok/s) | prefill llama.cpp | ours / llama.cpp | decode ours (tok/s) | decode llama.cpp | ours / llama.cpp |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.weights} | ${r.ours.prefillTokensPerSecond.toFixed(1)} | ${r.llamaCpp.prefillTokensPerSecond.toFixed(1)} | ${r.prefillRatio.toFixed(2)} | ${r.ours.decodeTokensPerSecond.toFixed(1)} | ${r.llamaCpp.decodeTokensPerSecond.toFixed(1)} | ${r.decodeRatio.toFixed(2)} |`),
  '',
  samplingMarkdown(samplingRows, `${now.cpu}, one thread, ${now.date.slice(0, 10)}`),
];
writeFileSync(join(results, 'generate.md'), md.join('\n'));
console.log(`bench:generate: wrote ${join(results, 'generate.md')}`);
