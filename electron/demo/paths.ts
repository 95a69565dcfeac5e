// Where the bundled demo lives: resources/demo at the project root, found by
// walking up from this module (it runs from electron/demo under the tests and
// from dist/electron/demo when built); in the packaged desktop app,
// resources/demo beside app.asar.
import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
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

/**
 * The packaged desktop app keeps the demo as plain files in
 * resources/demo beside resources/app.asar (electron-builder's
 * extraResources): the engine mmaps the weights, which it cannot do inside
 * the archive. Null when `moduleDir` is not inside an app.asar.
 */
export function packagedDemoDir(moduleDir: string): string | null {
  const parts = moduleDir.split(sep);
  const asar = parts.lastIndexOf('app.asar');
  return asar < 0 ? null : join(parts.slice(0, asar).join(sep) || sep, 'demo');
}

export function bundledDemoFiles(moduleDir = dirname(fileURLToPath(import.meta.url))): DemoFiles {
  const packaged = packagedDemoDir(moduleDir);
  if (packaged) {
    if (existsSync(join(packaged, 'model', 'config.json'))) return demoFilesIn(packaged);
    throw new Error(`the bundled demo is missing from this installation (looked in ${packaged}); reinstall PEFT Studio`);
  }
  let dir = moduleDir;
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
