// The bundled demo's paths: the tiny Llama and the datasets made for it.
import { existsSync } from 'node:fs';
import { bundledDemoFiles } from '../demo/paths.js';
import type { DemoPaths } from '../api/contract.js';

export function demoPaths(): DemoPaths {
  const files = bundledDemoFiles();
  const datasets = [
    { name: 'task-train', path: files.taskTrain, description: 'the fine-tuning task: one-word answers to questions about a small made-up world (prompt / completion rows)' },
    { name: 'task-eval', path: files.taskEval, description: 'held-out questions of the same task, about facts no training question mentions' },
    { name: 'replay-train', path: files.replay, description: 'plain text like the pretraining corpus (text rows), to mix in against forgetting' },
    { name: 'base-sample', path: files.baseSample, description: 'held-out pretraining text (text rows), to measure forgetting' },
  ];
  return { model: files.model, datasets: datasets.filter((d) => existsSync(d.path)) };
}
