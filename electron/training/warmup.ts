// Warmup given as a fraction of the run (`train --warmup-ratio`, Hugging
// Face's warmup_ratio; in transformers 5 a warmup_steps below 1): the warmup
// steps are ceil(fraction x the run's optimizer steps), the product taken in
// float64 as TrainingArguments.get_warmup_steps takes it
// (math.ceil(num_training_steps * ratio)), so 0.07 of 100 steps is 8 steps
// there and here (100 * 0.07 = 7.000000000000001). The run's steps are those
// of the whole run, after gradient accumulation and over every epoch
// (trainer.ts totalSteps), as the Trainer's max_steps.
//
// A new run resolves the fraction once its steps are counted (withRunWarmup)
// and records both: config.warmupRatio what the user said, config.warmupSteps
// the steps it came to; a resume takes that count from run.json, computing
// nothing again. No Node import: the app's form says the same count.
import type { TrainConfig } from './config.js';
import { countOf } from '../text/plural.js';

type WarmupSettings = Pick<TrainConfig, 'warmupSteps' | 'warmupRatio'>;

/** ceil(ratio x totalSteps), as transformers computes it. */
export function warmupStepsOfRatio(ratio: number, totalSteps: number): number {
  return Math.ceil(totalSteps * ratio);
}

/**
 * The warmup steps of a run of `totalSteps` optimizer steps: the fraction's
 * count when one was given (a run.json from before the fraction has none:
 * its warmupSteps as given).
 */
export function runWarmupSteps(config: WarmupSettings, totalSteps: number): number {
  const ratio = config.warmupRatio ?? null;
  return ratio === null ? config.warmupSteps : warmupStepsOfRatio(ratio, totalSteps);
}

/** The configuration with warmupSteps the count its fraction comes to over the run's steps (unchanged without a fraction). */
export function withRunWarmup<C extends WarmupSettings>(config: C, totalSteps: number): C {
  if ((config.warmupRatio ?? null) === null) return config;
  return { ...config, warmupSteps: runWarmupSteps(config, totalSteps) };
}

/** 0.03 -> "3%", 0.125 -> "12.5%" (without float64's 7.000000000000001). */
export function percentWords(ratio: number): string {
  return `${Number((ratio * 100).toPrecision(12))}%`;
}

/**
 * "3% of 400 steps = 12 steps": what a fraction comes to, for the form and
 * the run's facts (`count` words a count: the app's writes 1,200).
 */
export function warmupRatioWords(ratio: number, totalSteps: number, count: (n: number, noun: string) => string = countOf): string {
  return `${percentWords(ratio)} of ${count(totalSteps, 'step')} = ${count(warmupStepsOfRatio(ratio, totalSteps), 'step')}`;
}
