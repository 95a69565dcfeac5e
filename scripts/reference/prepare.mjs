#!/usr/bin/env node
// Builds the inputs of the PyTorch cross-check into a folder (default
// .refcheck/): for each case in electron/testing/pytorch-cases.ts a tiny model
// folder and an adapter of ours (LoRA A from our init, B random so the adapter
// changes the output), plus cases.json. Copies our adapters into
// electron/testing/fixtures/pytorch/ours-<case>/ so the test uses the very same
// files PyTorch loaded. Run after `npm run build:ts` and a native build.
import { mkdirSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const root = resolve(new URL('../..', import.meta.url).pathname);
const dist = (p) => join(root, 'dist', 'electron', p);
const { PYTORCH_CASES, PYTORCH_BATCH, PYTORCH_PROMPT } = await import(dist('testing/pytorch-cases.js'));
const { writeTinyModel } = await import(dist('testing/tiny-model.js'));
const { writePeftAdapter } = await import(dist('adapters/peft.js'));
const { openModelFolder } = await import(dist('models/folder.js'));
const { loadAddon } = await import(dist('engine/load.js'));
const { FixtureRng } = await import(dist('testing/fixture-rng.js'));

const out = resolve(process.argv[2] ?? join(root, '.refcheck'));
const fixtures = join(root, 'electron', 'testing', 'fixtures', 'pytorch');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const addon = loadAddon();
const cases = [];
for (const c of PYTORCH_CASES) {
  const modelDir = join(out, c.name, 'model');
  const tiny = await writeTinyModel(modelDir, c.model);
  const folder = await openModelFolder(modelDir);
  const engine = new addon.Engine(folder.spec, { threads: 1, gradientCheckpointing: false, seed: 0 });
  engine.loadWeights(folder.weights);
  engine.setupLora({ ...c.lora, seed: 1234 });
  const prng = new FixtureRng(99);
  const tensors = [];
  for (const p of engine.parameters().filter((q) => q.trainable)) {
    let data = engine.getTensor(p.name);
    if (p.name.includes('lora_B')) data = prng.normalArray(data.length, 0.05);
    tensors.push({ name: p.name, shape: p.shape, data });
  }
  engine.dispose();
  const adapterDir = join(out, c.name, 'ours');
  await writePeftAdapter({ dir: adapterDir, spec: folder.spec, lora: c.lora, baseModelNameOrPath: `tiny/${c.name}`, tensors });
  const fixture = join(fixtures, `ours-${c.name}`);
  rmSync(fixture, { recursive: true, force: true });
  cpSync(adapterDir, fixture, { recursive: true });
  const hash = createHash('sha256');
  for (const f of tiny.weightFiles) hash.update(readFileSync(join(modelDir, f)));
  cases.push({ name: c.name, model: `${c.name}/model`, adapter: `${c.name}/ours`, weightsSha256: hash.digest('hex'), peftLora: c.peftLora });
}
writeFileSync(join(out, 'cases.json'), JSON.stringify({ cases, batch: PYTORCH_BATCH, prompt: PYTORCH_PROMPT }, null, 2));
console.log(`prepared ${cases.length} cases in ${out}`);
