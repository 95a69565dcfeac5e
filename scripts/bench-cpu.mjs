#!/usr/bin/env node
// npm run bench:cpu — builds the core's benchmark executables with CMake
// (Release, OpenBLAS linked as the reference when present) and runs them:
//   (a) GEMM GFLOP/s on training shapes, ours vs OpenBLAS sgemm, same process
//   (b) LoRA training tokens/s and GFLOP/s on a SmolLM2-135M-shaped model,
//       against OpenBLAS sgemm GFLOP/s measured in the same run
//   (c) measured peak memory against the engine's own estimate
//   (d) the fused 4-bit NF4 GEMM/GEMV against the fp32 GEMM (bench_nf4 -> nf4.json)
//   (f) loading a QLoRA engine (quantizing at load) against LoRA's load of
//       the same checkpoint (bench_nf4 --load -> nf4-load.json)
//   (g) the time estimate's tokens/s against the measured steps of (b)
//       (scripts/bench-time-estimate.mjs -> time-estimate.json / .md)
// Results: bench/results/cpu.json and bench/results/cpu.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'native-addon', 'build-bench');
const results = join(root, 'bench', 'results');
mkdirSync(results, { recursive: true });

const threads = Number(process.env.BENCH_THREADS ?? cpus().length);
// An OPENBLAS_CORETYPE inherited from the environment is not passed on: the
// reference is OpenBLAS with the kernels it picks for this CPU (a forced older
// core, e.g. Haswell on an AVX-512 CPU, halves sgemm and flatters every ratio).
const { OPENBLAS_CORETYPE: inheritedCore, ...env } = process.env;
if (inheritedCore) console.log(`bench:cpu: not passing OPENBLAS_CORETYPE=${inheritedCore} on: OpenBLAS picks its kernels for this CPU`);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });

run('cmake', ['-S', 'native-addon', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', buildDir, '-j', String(Math.max(1, cpus().length)), '--target', 'bench_gemm', 'bench_train', 'bench_nf4']);

const cache = readFileSync(join(buildDir, 'CMakeCache.txt'), 'utf8');
if (!/PS_OPENBLAS:FILEPATH=\/.+/.test(cache)) {
  console.error('bench:cpu: OpenBLAS was not found; the ratios need it as the reference. Install it (Debian: apt-get install libopenblas-dev) and run again.');
  process.exit(1);
}

const exe = (name) => {
  const p = [join(buildDir, name), join(buildDir, 'Release', name)].find(existsSync);
  if (!p) throw new Error(`bench:cpu: ${name} was not built`);
  return p;
};

const gemmJson = join(results, 'gemm.json');
const trainJson = join(results, 'train.json');
run(exe('bench_gemm'), [gemmJson, `--threads=${threads}`]);
run(exe('bench_train'), [trainJson, `--threads=${threads}`]);
const nf4Json = join(results, 'nf4.json');
run(exe('bench_nf4'), [nf4Json, `--threads=${threads}`]);
const loadJson = join(results, 'nf4-load.json');
run(exe('bench_nf4'), [loadJson, `--threads=${threads}`, '--load=smollm2-135m']);

const gemm = JSON.parse(readFileSync(gemmJson, 'utf8'));
const train = JSON.parse(readFileSync(trainJson, 'utf8'));
const nf4 = JSON.parse(readFileSync(nf4Json, 'utf8'));
const nf4Load = JSON.parse(readFileSync(loadJson, 'utf8'));
const cpu = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? 'unknown',
  threads,
  gemm,
  train,
  nf4,
  nf4Load,
};
writeFileSync(join(results, 'cpu.json'), JSON.stringify(cpu, null, 2) + '\n');

const MiB = (b) => (b / 2 ** 20).toFixed(0);
const gemmRows = gemm.cases.map((c) =>
  `| ${c.layer} | ${c.tokens} | ${c.layout} | ${c.M}×${c.N}×${c.K} | ${c.ours_gflops.toFixed(1)} | ${c.openblas_gflops.toFixed(1)} | ${c.ratio.toFixed(2)} |`);
const trainRows = train.configs.map((c) => {
  const blas = train.sgemm_gflops[String(c.tokens_per_step)] ?? train.sgemm_gflops['256'];
  const off = ((c.estimate_total_bytes / c.peak_rss_bytes - 1) * 100).toFixed(1);
  return `| ${c.config} | ${c.tokens_per_second.toFixed(0)} | ${c.gflops.toFixed(1)} | ${(c.gflops / blas).toFixed(2)} | ${(c.best_gflops / blas).toFixed(2)} | ${c.trainable_params.toLocaleString('en-US')} | ${MiB(c.estimate_total_bytes)} | ${MiB(c.peak_rss_bytes)} | ${off}% |`;
});
const byConfig = Object.fromEntries(train.configs.map((c) => [c.config, c]));
const fastest = (c) => c.tokens_per_step / c.best_step_seconds;
const promptRows = ['lora_all_b1', 'prompt20_b1', 'prompt100_b1', 'prefix20_b1', 'prefix20_proj_b1']
  .filter((name) => byConfig[name] && byConfig.lora_all_b1)
  .map((name) => {
    const c = byConfig[name], l = byConfig.lora_all_b1;
    return `| ${name} | ${c.tokens_per_second.toFixed(0)} | ${fastest(c).toFixed(0)} | ${(c.tokens_per_second / l.tokens_per_second).toFixed(2)} | ${(fastest(c) / fastest(l)).toFixed(2)} | ${MiB(c.peak_rss_bytes)} | ${(c.peak_rss_bytes / l.peak_rss_bytes).toFixed(3)} | ${c.trainable_params.toLocaleString('en-US')} |`;
  });
const md = [
  `# bench:cpu — ${cpu.date}`,
  '',
  `CPU: ${cpu.cpu}; ${threads} threads; engine: ${train.engine}; OpenBLAS kernels: ${gemm.openblas_core}.`,
  ...(inheritedCore ? [`The environment set OPENBLAS_CORETYPE=${inheritedCore}; it was not passed on, so OpenBLAS used the kernels it picks for this CPU.`] : []),
  '',
  '## (a) GEMM vs OpenBLAS sgemm, same process',
  '',
  `Geometric-mean ratio ours / OpenBLAS: ${Object.entries(gemm.geomean_ratio).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}.`,
  '',
  '| layer | tokens | layout | M×N×K | ours GFLOP/s | OpenBLAS GFLOP/s | ratio |',
  '| --- | ---: | --- | --- | ---: | ---: | ---: |',
  ...gemmRows,
  '',
  '## (b) Training a SmolLM2-135M-shaped model, seq 256, and (c) memory',
  '',
  `OpenBLAS sgemm on the 1536×576 projection in the same run: ${Object.entries(train.sgemm_gflops).map(([t, g]) => `${Number(g).toFixed(1)} GFLOP/s at ${t} tokens`).join(', ')}.`,
  'Ratios are engine GFLOP/s (FLOPs counted as documented in native-addon/bench/bench_train.cpp) over that sgemm figure;',
  '"median" uses the median step, "best" the fastest. The estimate is what `inspect` reports: `estimate_memory` (the tensors) plus the CPU threads\' scratch (`estimate_device_memory`).',
  '',
  '| config | tokens/s | GFLOP/s | ratio (median) | ratio (best) | trainable params | estimate MiB | peak RSS MiB | estimate vs peak |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...trainRows,
  '',
  '## (d) QLoRA: fused 4-bit NF4 kernels vs the fp32 GEMM, same shapes, same run',
  '',
  `Training shapes (targets >= 0.8): geometric-mean NF4 / fp32 nt ${nf4.geomean_ratio.nt.toFixed(2)}, nn ${nf4.geomean_ratio.nn.toFixed(2)}.`,
  `Generation GEMV, batch 1, ${nf4.generation.layers} layers x 7 projections (${(nf4.generation.weights / 1e6).toFixed(0)}M weights, fp32 ${(nf4.generation.fp32_bytes / 1e6).toFixed(0)} MB, NF4 ${(nf4.generation.nf4_bytes / 1e6).toFixed(1)} MB): NF4 ${nf4.generation.nf4_ms_per_token.toFixed(2)} ms/token, fp32 ${nf4.generation.fp32_ms_per_token.toFixed(2)} ms/token: ${nf4.generation.speedup.toFixed(2)}x (target >= 2).`,
  '',
  '| layer | op | M×N×K | NF4 GFLOP/s | fp32 GFLOP/s | OpenBLAS GFLOP/s | NF4 / fp32 |',
  '| --- | --- | --- | ---: | ---: | ---: | ---: |',
  ...nf4.training.map((c) => `| ${c.layer} | ${c.op} | ${c.M}×${c.N}×${c.K} | ${c.nf4_gflops.toFixed(1)} | ${c.fp32_gflops.toFixed(1)} | ${c.openblas_gflops.toFixed(1)} | ${c.ratio.toFixed(2)} |`),
  '',
  '## (e) Prompt and prefix tuning (PEFT) vs LoRA r=16 on all linears, batch 1 x 256 real tokens',
  '',
  'tokens/s counts the real tokens (prompt tuning also runs its virtual tokens through the model).',
  '',
  '| config | tokens/s (median) | tokens/s (fastest step) | vs LoRA (median) | vs LoRA (fastest) | peak RSS MiB | vs LoRA | trainable params |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...promptRows,
  '',
  "## (f) Loading a QLoRA model (quantized to NF4 at load) vs LoRA's load of the same checkpoint, same run",
  '',
  `${nf4Load.shape}, random BF16 checkpoint, ${(nf4Load.quantized_weights / 1e6).toFixed(1)}M weights quantized (block linears, blocksize 64, double quantization), ${nf4Load.threads} threads, best of 3:`,
  `QLoRA load ${nf4Load.qlora_load_ms.toFixed(0)} ms (${nf4Load.ns_per_quantized_weight.toFixed(1)} ns per quantized weight); LoRA load ${nf4Load.lora_load_ms.toFixed(0)} ms (its frozen 16-bit weights are used in place from the file mapping, nothing is converted), so quantizing costs ${(nf4Load.qlora_load_ms - nf4Load.lora_load_ms).toFixed(0)} ms.`,
  '',
];
writeFileSync(join(results, 'cpu.md'), md.join('\n'));
console.log(`bench:cpu: wrote ${join('bench', 'results', 'cpu.json')} and cpu.md`);

// (g) the time estimate said before a run (electron/training/time-estimate.ts) against the steps just measured:
// bench/results/time-estimate.md. It runs the compiled estimator, so dist/ must be built.
if (existsSync(join(root, 'dist', 'electron', 'training', 'time-estimate.js'))) run('node', [join('scripts', 'bench-time-estimate.mjs')]);
else console.error('bench:cpu: dist/ is not built, so the time estimate was not compared; run `npx tsc -p tsconfig.json && node scripts/bench-time-estimate.mjs`');
