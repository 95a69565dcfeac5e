#!/usr/bin/env node
// Rebuilds resources/demo/ from nothing: the synthetic corpus, a byte-level BPE
// tokenizer trained on it, a seeded random init and its pretraining by the
// project's own full fine-tuning path (see electron/demo/build-model.ts).
// Build the TypeScript first: npx tsc -p tsconfig.json
//   node scripts/demo/build-demo-model.mjs [--threads 2] [--steps N] [--seed S] [--out DIR] [--work DIR]
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { buildDemo } = await import(join(root, 'dist/electron/demo/build-model.js')).catch((e) => {
  console.error(`cannot load dist/ (${e.message}); build it first with: npx tsc -p tsconfig.json`);
  process.exit(1);
});

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '800' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: join(root, 'resources', 'demo') },
    work: { type: 'string', default: join(tmpdir(), 'peft-studio-demo-build') },
  },
});
const info = await buildDemo({
  out: resolve(values.out),
  work: resolve(values.work),
  threads: Number(values.threads),
  steps: Number(values.steps),
  seed: Number(values.seed),
  io: { stderr: (t) => process.stderr.write(t), stderrIsTTY: Boolean(process.stderr.isTTY) },
});
console.log(JSON.stringify(info, null, 2));
