// Where the bundled demo lives: resources/demo at the project root, found by
// walking up from this module (it runs from electron/demo under the tests and
// from dist/electron/demo when built).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DemoFiles {
  dir: string;
  model: string;
  taskTrain: string;
  taskEval: string;
  baseSample: string;
  /** pretraining-style text mixed into the fine-tuning rows (rehearsal against forgetting) */
  replay: string;
  buildInfo: string;
}

export function demoFilesIn(dir: string): DemoFiles {
  return {
    dir,
    model: join(dir, 'model'),
    taskTrain: join(dir, 'task-train.jsonl'),
    taskEval: join(dir, 'task-eval.jsonl'),
    baseSample: join(dir, 'base-sample.jsonl'),
    replay: join(dir, 'replay-train.jsonl'),
    buildInfo: join(dir, 'build-info.json'),
  };
}

export function bundledDemoFiles(): DemoFiles {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'resources', 'demo');
    if (existsSync(join(candidate, 'model', 'config.json'))) return demoFilesIn(candidate);
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error('the bundled demo (resources/demo/model) is missing from this installation; rebuild it with: node scripts/demo/build-demo-model.mjs');
    }
    dir = parent;
  }
}
