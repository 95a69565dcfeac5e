#!/usr/bin/env node
// npm run bench:cpu — builds the core's benchmark executables with CMake
// (Release, OpenBLAS linked as the reference when present) and runs them:
//   (a) GEMM GFLOP/s on training shapes, ours vs OpenBLAS sgemm, same process
//   (b) LoRA training tokens/s and GFLOP/s on a SmolLM2-135M-shaped model,
//       against OpenBLAS sgemm GFLOP/s measured in the same run
//   (c) measured peak memory against the engine's own estimate
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
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

run('cmake', ['-S', 'native-addon', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', buildDir, '-j', String(Math.max(1, cpus().length)), '--target', 'bench_gemm', 'bench_train']);

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

const gemm = JSON.parse(readFileSync(gemmJson, 'utf8'));
const train = JSON.parse(readFileSync(trainJson, 'utf8'));
const cpu = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? 'unknown',
  threads,
  gemm,
  train,
};
writeFileSync(join(results, 'cpu.json'), JSON.stringify(cpu, null, 2) + '\n');

const md = [
  `# bench:cpu — ${cpu.date}`,
  '',
  `CPU: ${cpu.cpu}, ${threads} threads.`,
  '',
  '## (a) GEMM vs OpenBLAS sgemm (same process)',
  '',
  gemm.markdown ?? '```\n' + JSON.stringify(gemm.summary ?? gemm, null, 2) + '\n```',
  '',
  '## (b, c) Training on a SmolLM2-135M-shaped model',
  '',
  train.markdown ?? '```\n' + JSON.stringify(train.summary ?? train, null, 2) + '\n```',
  '',
];
writeFileSync(join(results, 'cpu.md'), md.join('\n'));
console.log(`bench:cpu: wrote ${join('bench', 'results', 'cpu.json')} and cpu.md`);
