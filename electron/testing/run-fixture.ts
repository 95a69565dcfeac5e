// For tests that run executeRun directly: a tiny model, a dataset of
// `rows` cycling rows and a studio home of their own (kept states go there),
// set up before the file's tests and the home given back after; `configFor`
// builds a run's config from `train`'s flags, as the CLI would.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import type { RunEndEvent, RunEvent } from '../runs/events.js';
import { executeRun } from '../runs/execute.js';
import type { TrainConfig } from '../training/config.js';
import { cycleRows, tempDir, tinyModel, writeJsonl } from './e2e-fixtures.js';

export interface RunFixture {
  /** the folder the tests write into */
  work(): string;
  modelDir(): string;
  data(): string;
  /** --model, --data and --out given; then `base`, then `flags` */
  configFor(out: string, flags?: string[]): TrainConfig;
}

/** `base`: the flags every run of the file shares (steps, batch size, threads, seed ...). */
export function runFixture(name: string, options: { seed: number; rows: number; base: string[] }): RunFixture {
  let work = '', modelDir = '', data = '';
  const savedHome = process.env.PEFT_STUDIO_HOME;
  beforeAll(async () => {
    modelDir = (await tinyModel({ seed: options.seed })).dir;
    work = tempDir(name);
    data = writeJsonl(join(work, 'd.jsonl'), cycleRows(options.rows, 12));
    process.env.PEFT_STUDIO_HOME = join(work, 'home');
  });
  afterAll(() => {
    if (savedHome === undefined) delete process.env.PEFT_STUDIO_HOME;
    else process.env.PEFT_STUDIO_HOME = savedHome;
  });
  return {
    work: () => work,
    modelDir: () => modelDir,
    data: () => data,
    configFor: (out, flags = []) => trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out, ...options.base, ...flags])),
  };
}

/** One run in this process (executeRun), with the steps it took; onEvent sees every event. */
export async function runOnce(config: TrainConfig, resume: boolean, onEvent: (e: RunEvent) => void = () => {}): Promise<{ end: RunEndEvent; steps: number[] }> {
  const steps: number[] = [];
  const end = await executeRun(config, { resume, emit: (e) => { if (e.type === 'step') steps.push(e.step); onEvent(e); } });
  return { end, steps };
}

export const adapterOf = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
export const messageOf = (end: RunEndEvent) => (end as { message: string }).message;
/** The run's key for its kept state: run.json's created_at. */
export const runKeyOf = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { created_at: string }).created_at;
