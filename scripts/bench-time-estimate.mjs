#!/usr/bin/env node
// The time estimate's accuracy, measured: for every configuration bench_train
// measured (bench/results/train.json, written by `npm run bench:cpu`), the
// estimator (dist/electron/training/time-estimate.js, the code `train`,
// `inspect` and the app use) on the same shape, its tokens/s against the
// measured median-step tokens/s. The yardstick is what calibration.ts measures
// in a run: the engine's own GEMM on the gate/up projection, which
// bench_train records in the same process (engine_gemm_gflops). Also checks
// that the estimator counts the same FLOPs as bench_train (measured GFLOP/s x
// step seconds). `--live` adds a column with this machine's GEMM measured
// now through the addon (as `train` would), against the same measured steps.
// The efficiencies come from cpu.json's ratios on these very configurations,
// so the spread here is in-sample: it says how well one constant per method
// fits batch, sequence length, targets and virtual tokens, not a new machine.
// Needs `npx tsc -p tsconfig.json` first. Writes bench/results/time-estimate.json and .md.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', 'electron', p));
const { microBatchFlops, uniformMicroBatch } = await dist('training/step-flops.js');
const { estimateSeconds, methodEfficiency } = await dist('training/time-estimate.js');
const results = join(root, 'bench', 'results');
// --train FILE: another bench_train result (e.g. a later run on a busy machine: an out-of-sample check); --name NAME: write NAME.json / .md
const arg = (flag) => { const i = process.argv.indexOf(flag); return i > 0 ? process.argv[i + 1] : undefined; };
const trainFile = arg('--train') ?? join(results, 'train.json');
const name = arg('--name') ?? 'time-estimate';
const train = JSON.parse(readFileSync(trainFile, 'utf8'));
const live = process.argv.includes('--live');

// bench_train.cpp's model (SmolLM2-135M shape) and configurations (its kConfigs)
const spec = {
  architecture: 'LlamaForCausalLM', vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3,
  headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 0 },
  maxPositionEmbeddings: 8192, tieWordEmbeddings: true, attentionBias: false, qkNorm: false,
};
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const lora = (targets = ALL) => ({ rank: 16, targets, layers: null });
const base = { lora: null, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false };
const CONFIGS = {
  lora_all_b1: [1, 256, { ...base, method: 'lora', lora: lora() }],
  lora_all_s1024: [1, 1024, { ...base, method: 'lora', lora: lora() }],
  lora_all_b4: [4, 256, { ...base, method: 'lora', lora: lora() }],
  lora_qv_b1: [1, 256, { ...base, method: 'lora', lora: lora(['q_proj', 'v_proj']) }],
  lora_all_b1_ckpt: [1, 256, { ...base, method: 'lora', lora: lora(), gradientCheckpointing: true }],
  full_b1: [1, 256, { ...base, method: 'full' }],
  qlora_all_b1: [1, 256, { ...base, method: 'qlora', lora: lora() }],
  qlora_all_b4: [4, 256, { ...base, method: 'qlora', lora: lora() }],
  qlora_all_b1_ckpt: [1, 256, { ...base, method: 'qlora', lora: lora(), gradientCheckpointing: true }],
  prompt20_b1: [1, 256, { ...base, method: 'prompt', virtualTokens: 20 }],
  prompt100_b1: [1, 256, { ...base, method: 'prompt', virtualTokens: 100 }],
  prefix20_b1: [1, 256, { ...base, method: 'prefix', virtualTokens: 20 }],
  prefix20_proj_b1: [1, 256, { ...base, method: 'prefix', virtualTokens: 20, prefixEncoderHidden: 512 }],
};

let liveGflops = null;
if (live) {
  const { loadAddon } = await dist('engine/load.js');
  const { measureGemm } = await dist('training/calibration.js');
  liveGflops = measureGemm(loadAddon().ops, { M: 256, N: 1536, K: 576 }, train.threads, 5);
}

const rows = [];
for (const c of train.configs) {
  const def = CONFIGS[c.config];
  if (!def) continue;
  const [batch, seq, settings] = def;
  const flops = microBatchFlops(spec, settings, uniformMicroBatch(batch, seq, settings.method));
  const benchFlops = c.gflops * 1e9 * c.step_seconds; // bench_train's own count
  const gemm = train.engine_gemm_gflops?.[String(c.tokens_per_step)] ?? train.engine_gemm_gflops?.['256'];
  const tps = (g) => (batch * seq) / estimateSeconds(flops.total, settings, { where: 'cpu', gflops: g }).seconds;
  rows.push({
    config: c.config,
    flops_useful: flops.useful,
    flops_recompute: flops.recompute,
    count_vs_bench: flops.useful / benchFlops,
    efficiency: methodEfficiency(settings),
    yardstick_gflops: gemm,
    estimated_tokens_per_second: tps(gemm),
    measured_tokens_per_second: c.tokens_per_second,
    ratio: tps(gemm) / c.tokens_per_second,
    ...(liveGflops ? { live_gflops: liveGflops, live_ratio: tps(liveGflops) / c.tokens_per_second } : {}),
  });
}
const ratios = rows.map((r) => r.ratio);
const worst = Math.max(...ratios.map((r) => Math.abs(r - 1)));
const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
const out = { date: new Date().toISOString(), cpu: cpus()[0]?.model ?? 'unknown', threads: train.threads, live_gflops: liveGflops, geomean_ratio: geo, worst_deviation: worst, rows };
writeFileSync(join(results, `${name}.json`), `${JSON.stringify(out, null, 2)}\n`);
const md = [
  `# Time estimate vs measured training steps — ${out.date}`,
  '',
  `Measured: ${trainFile.startsWith(root) ? trainFile.slice(root.length + 1) : trainFile} (bench_train, SmolLM2-135M shape, ${train.threads} threads, median step). Estimated: electron/training/time-estimate.ts on the same shapes,`,
  "with the engine's GEMM GFLOP/s bench_train measured in the same run as the yardstick (what calibration.ts measures before a run).",
  name === 'time-estimate'
    ? 'The efficiencies are fitted on these runs (bench/results/cpu.json), so this is in-sample: the spread of one constant per method across batch, length, targets and virtual tokens.'
    : 'A run other than the one the efficiencies were fitted on (bench/results/cpu.json): out of sample.',
  `"count vs bench": the estimator's useful FLOPs over bench_train's count (1.000: the same counting).${liveGflops ? ` "live": this machine's GEMM measured now (${liveGflops.toFixed(1)} GFLOP/s).` : ''}`,
  '',
  `Geometric-mean ratio estimated / measured tokens/s: ${geo.toFixed(3)}; worst deviation ${(worst * 100).toFixed(1)}%.`,
  '',
  `| config | count vs bench | efficiency | yardstick GFLOP/s | estimated tok/s | measured tok/s | ratio |${liveGflops ? ' live ratio |' : ''}`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: |${liveGflops ? ' ---: |' : ''}`,
  ...rows.map((r) => `| ${r.config} | ${r.count_vs_bench.toFixed(3)} | ${r.efficiency.toFixed(3)} | ${r.yardstick_gflops.toFixed(1)} | ${r.estimated_tokens_per_second.toFixed(0)} | ${r.measured_tokens_per_second.toFixed(0)} | ${r.ratio.toFixed(2)} |${liveGflops ? ` ${r.live_ratio.toFixed(2)} |` : ''}`),
  '',
  `Reproduce: \`npx tsc -p tsconfig.json && node scripts/bench-time-estimate.mjs ${process.argv.slice(2).join(' ')}\` (after \`npm run bench:cpu\` for new measurements).`,
  '',
];
writeFileSync(join(results, `${name}.md`), md.join('\n'));
console.log(md.join('\n'));
