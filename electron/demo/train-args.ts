// Training runs of the demo (pretraining the base model, fine-tuning it) are
// described as `peft-studio train` command lines and resolved by the train
// command's own parser, so they use exactly the defaults and checks a user's
// run gets, and stay in step when train gains settings.
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import type { TrainConfig } from '../training/config.js';

export type TrainFlags = Record<string, string | number | boolean>;

/** {"batch-size": 16, rslora: true} -> ["--batch-size", "16", "--rslora"] */
export function flagsToArgv(flags: TrainFlags): string[] {
  const argv: string[] = [];
  for (const [name, value] of Object.entries(flags)) {
    if (value === false) continue;
    argv.push(`--${name}`);
    if (value !== true) argv.push(String(value));
  }
  return argv;
}

export function trainConfig(flags: TrainFlags): TrainConfig {
  return trainConfigFromArgs(parseArgs(trainSpec, flagsToArgv(flags)));
}
