#!/usr/bin/env node
// npm run bench:contention — training while other programs keep every core
// busy, as on a desktop where the browser or a build runs beside the app.
// Runs `peft-studio demo --steps 200` (LoRA on the bundled model) with 1 and
// with BENCH_THREADS (default: all cores) threads, first on an idle machine,
// then beside busy processes (half the cores, then one per core). The 1-thread run of the same
// condition is the reference: a pool that waits for a descheduled worker makes
// the multi-threaded run slower than the single thread beside the busy
// processes (before the pool let the caller take unclaimed chunks: 95 s
// against 4.4 s). Writes bench/results/contention.json and contention.md.
// The adapters of each thread count must be byte-identical idle and busy
// (who runs a chunk must not change a bit); the script stops if they differ.
// Build first: npx tsc -p tsconfig.json
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, 'bench', 'results');
mkdirSync(results, { recursive: true });
const cores = cpus().length;
const threads = Number(process.env.BENCH_THREADS ?? cores);
const steps = 200;
const scratch = mkdtempSync(join(tmpdir(), 'bench-contention-'));

function train(label, threadCount) {
  const out = join(scratch, `${label}-${threadCount}`);
  const started = performance.now();
  execFileSync(process.execPath, [join(root, 'dist/electron/cli/main.js'), 'demo', '--threads', String(threadCount), '--steps', String(steps), '--out', out], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const report = JSON.parse(readFileSync(join(out, 'demo.json'), 'utf8'));
  return {
    threads: threadCount,
    training_seconds: report.training.seconds,
    process_seconds: (performance.now() - started) / 1000,
    adapter: readFileSync(join(out, 'run', 'adapter_model.safetensors')),
  };
}

function startBusy(count) {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

const conditions = [];
for (const busy of [...new Set([0, Math.floor(cores / 2), cores])]) {
  const hogs = startBusy(busy);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const one = train(`busy${busy}`, 1);
    const many = train(`busy${busy}`, threads);
    conditions.push({ busy_processes: busy, one, many });
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
  }
}
rmSync(scratch, { recursive: true, force: true });

for (const which of ['one', 'many']) {
  for (const c of conditions.slice(1)) {
    if (!conditions[0][which].adapter.equals(c[which].adapter))
      throw new Error(`the ${c[which].threads}-thread adapters differ between the idle machine and beside ${c.busy_processes} busy processes`);
  }
}

const strip = ({ adapter, ...rest }) => rest;
const data = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores,
  steps,
  conditions: conditions.map((c) => ({
    busy_processes: c.busy_processes,
    one_thread: strip(c.one),
    many_threads: strip(c.many),
    many_over_one_time: c.many.training_seconds / c.one.training_seconds,
  })),
  adapters_identical_idle_and_busy: true,
};
writeFileSync(join(results, 'contention.json'), JSON.stringify(data, null, 2) + '\n');
const row = (c) =>
  `| ${c.busy_processes === 0 ? 'idle' : `beside ${c.busy_processes} busy process${c.busy_processes === 1 ? '' : 'es'}`} | ${c.one_thread.training_seconds.toFixed(1)} s | ` +
  `${c.many_threads.training_seconds.toFixed(1)} s | **${c.many_over_one_time.toFixed(2)}×** |`;
const md = [
  '# Training beside busy programs',
  '',
  `${data.date}, ${data.cpu}, ${cores} cores. \`peft-studio demo --steps ${steps}\` (LoRA on the bundled model), training time as the demo reports it.`,
  'The reference is the 1-thread run in the same condition; the adapters are byte-identical idle and busy for each thread count.',
  '',
  `| machine | 1 thread | ${threads} threads | ${threads} threads / 1 thread |`,
  '|---|---|---|---|',
  ...data.conditions.map(row),
  '',
].join('\n');
writeFileSync(join(results, 'contention.md'), md);
process.stdout.write(md);
