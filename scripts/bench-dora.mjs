#!/usr/bin/env node
// npm run bench:dora — DoRA's training speed and memory against LoRA on the
// CPU, the way bench:cpu measures LoRA: bench_train (native-addon/bench,
// built in native-addon/build-bench with OpenBLAS linked as the reference)
// trains its SmolLM2-135M-shaped model, seq 256, batch 1, r=16 on all seven
// linears, each configuration in its own child process (its own peak RSS):
//   lora_all_b1 / dora_all_b1            fp32 base
//   qlora_all_b1 / qdora_all_b1          4-bit NF4 base
//   lora_all_b1_drop / dora_all_b1_drop  fp32 base, LoRA dropout 0.1
// The machine may be shared: bench_train runs all six `--rounds` times
// (default 5), so each configuration is measured at several moments. The
// DoRA/LoRA ratio is given two ways: from the fastest step of any round (the
// least disturbed one: on a busy machine the figure that repeats from run to
// run) and as the median of the per-round ratios of median steps (what an
// unshared machine would show, but on a busy one it moves with the load).
// With dist/ built (npx tsc -p tsconfig.json) it also checks
// that electron/training/step-flops.ts counts the FLOPs bench_train counts,
// and what the time estimate says for these rows.
// Options: --steps=N (timed steps per configuration and round, default 6),
// --rounds=N (default 5); BENCH_THREADS (default: one per CPU, as bench:cpu).
// An OPENBLAS_CORETYPE inherited from the environment is not passed on: the
// reference is OpenBLAS with the kernels it picks for this CPU (a forced
// older core would make the ratios to sgemm flatter the engine).
// Results: bench/results/dora.json and bench/results/dora.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'native-addon', 'build-bench'); // bench:cpu's build
const results = join(root, 'bench', 'results');
mkdirSync(results, { recursive: true });

const threads = Number(process.env.BENCH_THREADS ?? cpus().length);
const args = process.argv.slice(2);
const unknown = args.filter((a) => !/^--(steps|rounds)=/.test(a));
if (unknown.length) {
  console.error(`bench:dora: unknown argument ${unknown[0]}; usage: npm run bench:dora -- [--steps=N] [--rounds=N]`);
  process.exit(2);
}
const option = (name, fallback) => {
  const given = args.find((a) => a.startsWith(`--${name}=`));
  const n = given ? Number(given.slice(name.length + 3)) : fallback;
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench:dora: --${name} must be a whole number of at least 1, got "${given}"`);
    process.exit(2);
  }
  return n;
};
const steps = option('steps', 6), rounds = option('rounds', 5);
const run = (cmd, argv, env = process.env) => execFileSync(cmd, argv, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });

run('cmake', ['-S', 'native-addon', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', buildDir, '-j', String(Math.max(1, cpus().length)), '--target', 'bench_train']);
const cache = readFileSync(join(buildDir, 'CMakeCache.txt'), 'utf8');
if (!/PS_OPENBLAS:FILEPATH=\/.+/.test(cache)) {
  console.error('bench:dora: OpenBLAS was not found; the ratios to sgemm need it as the reference. Install it (Debian: apt-get install libopenblas-dev) and run again.');
  process.exit(1);
}
const exe = [join(buildDir, 'bench_train'), join(buildDir, 'Release', 'bench_train')].find(existsSync);
if (!exe) throw new Error('bench:dora: bench_train was not built');

// Each DoRA row and the LoRA row it is compared with (same base, shape, dropout).
const PAIRS = [
  { dora: 'dora_all_b1', lora: 'lora_all_b1', what: 'fp32 base' },
  { dora: 'qdora_all_b1', lora: 'qlora_all_b1', what: '4-bit NF4 base' },
  { dora: 'dora_all_b1_drop', lora: 'lora_all_b1_drop', what: 'fp32 base, dropout 0.1' },
];
const names = PAIRS.flatMap((p) => [p.lora, p.dora]);

const { OPENBLAS_CORETYPE: inheritedCore, ...env } = process.env;
if (inheritedCore) console.log(`bench:dora: not passing OPENBLAS_CORETYPE=${inheritedCore} on: OpenBLAS picks its kernels for this CPU`);
const loadBefore = loadavg()[0];
const tmp = mkdtempSync(join(tmpdir(), 'ps-bench-dora-'));
const trains = [];
try {
  for (let r = 0; r < rounds; r++) {
    console.log(`bench:dora: round ${r + 1} of ${rounds}`);
    const out = join(tmp, `train-${r}.json`);
    run(exe, [out, `--threads=${threads}`, `--steps=${steps}`, `--configs=${names.join(',')}`], env);
    trains.push(JSON.parse(readFileSync(out, 'utf8')));
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const loadAfter = loadavg()[0];
const byRound = trains.map((t) => Object.fromEntries(t.configs.map((c) => [c.config, c])));
for (const [r, got] of byRound.entries()) {
  const missing = names.filter((n) => !got[n]);
  if (missing.length) {
    console.error(`bench:dora: bench_train did not report ${missing.join(', ')} in round ${r + 1} (see its output above)`);
    process.exit(1);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const medianRound = (n) => {
  const order = byRound.map((b) => b[n]).sort((a, b) => a.tokens_per_second - b.tokens_per_second);
  return order[Math.floor((order.length - 1) / 2)];
};

const train = trains[0]; // engine, threads and OpenBLAS core are the same every round
// the strongest reference any round measured (its best of many runs, as bench_train takes it); every row runs 256 tokens per step
const sgemm = Math.max(...trains.map((t) => t.sgemm_gflops['256']));
const engineGemm = Math.max(...trains.map((t) => t.engine_gemm_gflops['256']));
const fastest = (c) => c.tokens_per_step / c.best_step_seconds;
const rows = names.map((n) => {
  const c = medianRound(n);
  const bestGflops = Math.max(...byRound.map((b) => b[n].best_gflops)); // the fastest step of any round
  return {
    config: n,
    rounds_tokens_per_second: byRound.map((b) => b[n].tokens_per_second),
    tokens_per_second: c.tokens_per_second,
    fastest_tokens_per_second: Math.max(...byRound.map((b) => fastest(b[n]))),
    gflops: c.gflops,
    best_gflops: bestGflops,
    sgemm_ratio: c.gflops / sgemm,
    best_sgemm_ratio: bestGflops / sgemm,
    trainable_params: c.trainable_params,
    estimate_bytes: c.estimate_total_bytes,
    peak_rss_bytes: c.peak_rss_bytes,
    estimate_vs_peak: c.estimate_total_bytes / c.peak_rss_bytes - 1,
    step_flops: c.gflops * 1e9 * c.step_seconds,
  };
});
const row = Object.fromEntries(rows.map((r) => [r.config, r]));
const comparisons = PAIRS.map((p) => {
  const d = row[p.dora], l = row[p.lora];
  const perRound = byRound.map((b) => b[p.dora].tokens_per_second / b[p.lora].tokens_per_second);
  return {
    dora: p.dora,
    lora: p.lora,
    rounds_tokens_per_second_ratio: perRound,
    tokens_per_second_ratio: median(perRound),
    fastest_tokens_per_second_ratio: d.fastest_tokens_per_second / l.fastest_tokens_per_second,
    flops_ratio: d.step_flops / l.step_flops,
    // FLOPs per second DoRA / LoRA: 1 when DoRA's extra products run as fast as LoRA's work
    fastest_efficiency_ratio: (d.fastest_tokens_per_second / l.fastest_tokens_per_second) * (d.step_flops / l.step_flops),
    efficiency_ratio: median(perRound) * (d.step_flops / l.step_flops),
    peak_rss_ratio: d.peak_rss_bytes / l.peak_rss_bytes,
    peak_rss_delta_bytes: d.peak_rss_bytes - l.peak_rss_bytes,
    estimate_delta_bytes: d.estimate_bytes - l.estimate_bytes,
  };
});

// The Node side's count and time estimate on the same shapes (the code `train` and `inspect` use), when dist/ is built.
let nodeSide = null;
const distFile = (p) => join(root, 'dist', 'electron', 'training', p);
if (existsSync(distFile('step-flops.js')) && existsSync(distFile('time-estimate.js'))) {
  const { microBatchFlops, stepOverheadFlops, uniformMicroBatch } = await import(distFile('step-flops.js'));
  const { tokensPerSecond } = await import(distFile('time-estimate.js'));
  if (typeof stepOverheadFlops === 'function') {
    const spec = { // bench_train's model (tests/smollm2_135m.h)
      architecture: 'LlamaForCausalLM', vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3,
      headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 0 },
      maxPositionEmbeddings: 8192, tieWordEmbeddings: true, attentionBias: false, qkNorm: false,
    };
    const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
    const settingsOf = (n) => ({
      method: n.startsWith('q') ? 'qlora' : 'lora',
      lora: { rank: 16, targets: ALL, layers: null, dora: n.includes('dora'), dropout: n.endsWith('_drop') ? 0.1 : 0 },
      virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false,
    });
    const yardstick = engineGemm; // what calibration.ts measures before a run
    nodeSide = {
      yardstick_gflops: yardstick,
      rows: names.map((n) => {
        const s = settingsOf(n);
        const flops = microBatchFlops(spec, s, uniformMicroBatch(1, 256, s.method)).useful + stepOverheadFlops(spec, s).useful;
        const estimated = tokensPerSecond(spec, s, 1, 256, { where: 'cpu', gflops: yardstick });
        return {
          config: n, count_vs_bench: flops / row[n].step_flops, estimated_tokens_per_second: estimated,
          estimate_vs_measured: estimated / row[n].tokens_per_second, estimate_vs_fastest: estimated / row[n].fastest_tokens_per_second,
        };
      }),
    };
  }
}

const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memory_bytes: totalmem(), load_before: loadBefore, load_after: loadAfter };
const out = {
  date: new Date().toISOString(), machine, threads: train.threads, steps, rounds, engine: train.engine, openblas_core: train.openblas_core,
  openblas_coretype_not_passed: inheritedCore ?? null, sgemm_gflops_256: sgemm, engine_gemm_gflops_256: engineGemm,
  rows, comparisons, node_side: nodeSide, bench_train_rounds: trains,
};
writeFileSync(join(results, 'dora.json'), JSON.stringify(out, null, 2) + '\n');

const MiB = (b) => (b / 2 ** 20).toFixed(0);
const signedMiB = (b) => `${b >= 0 ? '+' : ''}${(b / 2 ** 20).toFixed(1)}`;
const pct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
const md = [
  `# bench:dora — DoRA vs LoRA training on the CPU — ${out.date}`,
  '',
  `Machine: ${machine.cpu}, ${machine.cores} cores, ${(machine.memory_bytes / 2 ** 30).toFixed(0)} GiB; ${train.threads} threads; engine: ${train.engine}; OpenBLAS kernels: ${train.openblas_core}.`,
  `Load average (1 min) ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after: the machine may be shared, so compare rows of this run with each other, not with other files.`,
  ...(inheritedCore ? [`The environment set OPENBLAS_CORETYPE=${inheritedCore}; it was not passed on, so OpenBLAS used the kernels it picks for this CPU.`] : []),
  '',
  'What was run: `native-addon/bench/bench_train` (built in native-addon/build-bench), its SmolLM2-135M-shaped model (random BF16 checkpoint; the',
  'fp32 rows widen it, the q rows quantize the block linears to NF4), LoRA r=16, alpha 32 on all seven linears of all 30 layers, batch 1 x 256 tokens,',
  `AdamW; one step = forward_backward + optimizer_step; ${steps} timed steps after one warm-up step, each configuration in its own process;`,
  `the six configurations run ${rounds} time${rounds === 1 ? '' : 's'} over (rounds), so each is measured at ${rounds === 1 ? 'one moment' : 'several moments'} of a shared machine.`,
  'DoRA is PEFT `use_dora=True` (core/methods/dora.cpp): a trained magnitude per output row; its row norms are recomputed once per optimizer step.',
  '',
  'What the numbers mean:',
  '- tokens/s (median): 256 / the median step\'s seconds, in the round where that figure is the median of the rounds (the other columns of the row come from',
  '  the same round); tokens/s (fastest): 256 / the fastest step of any round, the least disturbed one.',
  '- GFLOP/s: the FLOPs bench_train.cpp counts for the step (useful work, its header lists the rules; DoRA adds its recomputed frozen product in',
  '  backward, the dropped input\'s products with dropout, and the per-step norms) over the median step\'s seconds. DoRA counts more FLOPs per token, so',
  '  its GFLOP/s can stay close to LoRA\'s while its tokens/s drops.',
  `- vs sgemm: that GFLOP/s over OpenBLAS sgemm on the 1536x576 projection (X[256,576]·W[1536,576]ᵀ, ${train.threads} threads), the best any round measured:`,
  `  ${sgemm.toFixed(1)} GFLOP/s (the engine's own GEMM on it: ${engineGemm.toFixed(1)}); "median" from the median step (what time-estimate.ts's efficiencies are), "best" from the fastest step of any round.`,
  '- estimate: `estimate_memory` with the run\'s options (lora.dora, lora.dropout; what `inspect` reports); peak RSS: the child process\'s peak resident',
  '  memory, which also holds the program, thread stacks, RoPE tables and the checkpoint pages mapped in use.',
  '',
  '| config | tokens/s (median) | tokens/s (fastest) | GFLOP/s | vs sgemm (median) | vs sgemm (best) | trainable params | estimate MiB | peak RSS MiB | estimate vs peak |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.config} | ${r.tokens_per_second.toFixed(0)} | ${r.fastest_tokens_per_second.toFixed(0)} | ${r.gflops.toFixed(1)} | ${r.sgemm_ratio.toFixed(2)} | ${r.best_sgemm_ratio.toFixed(2)} | ${r.trainable_params.toLocaleString('en-US')} | ${MiB(r.estimate_bytes)} | ${MiB(r.peak_rss_bytes)} | ${pct(r.estimate_vs_peak)} |`),
  '',
  '## DoRA / LoRA',
  '',
  '"tokens/s (fastest)": DoRA\'s fastest step of any round over LoRA\'s, the least disturbed steps: the ratio to read on a shared machine.',
  '"tokens/s (median)": the median over rounds of DoRA\'s median-step tokens/s over LoRA\'s in the same round, each round in brackets: their spread is',
  'the machine\'s load, not DoRA. "FLOPs": counted work per step, DoRA over LoRA. "efficiency": tokens/s (fastest) x FLOPs, i.e. DoRA\'s GFLOP/s over',
  'LoRA\'s on the fastest steps: 1.00 means DoRA\'s extra products run as fast as LoRA\'s work, so its slowdown is all extra work. The memory columns',
  'are DoRA against LoRA: what DoRA adds to peak RSS and to the estimate.',
  '',
  '| DoRA | LoRA | base | tokens/s (fastest) | tokens/s (median, per round) | FLOPs | efficiency | peak RSS | peak RSS Δ MiB | estimate Δ MiB |',
  '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...comparisons.map((c, i) => `| ${c.dora} | ${c.lora} | ${PAIRS[i].what} | ${c.fastest_tokens_per_second_ratio.toFixed(2)} | ${c.tokens_per_second_ratio.toFixed(2)} (${c.rounds_tokens_per_second_ratio.map((x) => x.toFixed(2)).join(', ')}) | ${c.flops_ratio.toFixed(2)} | ${c.fastest_efficiency_ratio.toFixed(2)} | ${c.peak_rss_ratio.toFixed(3)} | ${signedMiB(c.peak_rss_delta_bytes)} | ${signedMiB(c.estimate_delta_bytes)} |`),
  '',
  ...(nodeSide
    ? [
        '## The Node side on these shapes (dist/electron/training)',
        '',
        '"count vs bench": step-flops.ts\'s microBatchFlops + stepOverheadFlops over bench_train\'s count (1.000: the same counting). "estimated": time-estimate.ts\'s',
        `tokensPerSecond with the engine GEMM measured here (${nodeSide.yardstick_gflops.toFixed(1)} GFLOP/s) as the yardstick, as \`inspect\` would say it here; its efficiencies were fitted on another run (bench/results/cpu.json), DoRA at LoRA's.`,
        '',
        'A DoRA row whose "estimated / ..." matches its LoRA row\'s says DoRA at LoRA\'s efficiency holds; the level of the column is the load and the machine.',
        '',
        '| config | count vs bench | estimated tok/s | measured tok/s (median) | estimated / median | measured tok/s (fastest) | estimated / fastest |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...nodeSide.rows.map((r) => `| ${r.config} | ${r.count_vs_bench.toFixed(3)} | ${r.estimated_tokens_per_second.toFixed(0)} | ${row[r.config].tokens_per_second.toFixed(0)} | ${r.estimate_vs_measured.toFixed(2)} | ${row[r.config].fastest_tokens_per_second.toFixed(0)} | ${r.estimate_vs_fastest.toFixed(2)} |`),
        '',
      ]
    : ['(dist/ is not built with stepOverheadFlops, so the Node-side count was not checked: `npx tsc -p tsconfig.json` and run again.)', '']),
  `Reproduce: \`npm run bench:dora${args.length ? ` -- ${args.join(' ')}` : ''}\` (needs OpenBLAS: Debian \`apt-get install libopenblas-dev\`; the Node section needs \`npx tsc -p tsconfig.json\`).`,
  '',
];
writeFileSync(join(results, 'dora.md'), md.join('\n'));
console.log(md.join('\n'));
