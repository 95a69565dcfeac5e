// What the parent says when the child died without a word (no end event):
// killed by a signal, a native crash, a non-zero exit. SIGKILL is almost
// always the kernel's out-of-memory killer, so that message carries the
// run's memory estimate, what was free, and what to change.
import type { TrainConfig } from '../training/config.js';
import type { FailedEvent, StartedEvent } from './events.js';

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

const NATIVE_CRASH_SIGNALS = ['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT'];

export interface ChildDeath {
  code: number | null;
  signal: NodeJS.Signals | null;
  config: TrainConfig;
  started: StartedEvent | null;
  /** last step the child reported */
  lastStep: number | null;
  lastCheckpoint: string | null;
  /** peak resident memory the child reported */
  peakRssBytes: number | null;
  /** last lines the child printed */
  stderrTail: string[];
}

export function memoryAdvice(config: TrainConfig): string {
  const advice: string[] = [];
  if (config.batchSize > 1) advice.push('a smaller --batch-size (with --grad-accum to keep the effective batch)');
  advice.push('a shorter --seq-len');
  if (config.method !== 'full' && (config.lora?.rank ?? 0) > 4) advice.push('a lower --rank');
  if (config.method === 'full') advice.push('--method lora');
  return advice.join(', ');
}

export function explainChildDeath(d: ChildDeath): FailedEvent {
  const at = d.lastStep === null ? 'before its first step' : `after step ${d.lastStep}`;
  const resume = `peft-studio train --resume ${d.config.out}`;
  const from = d.lastCheckpoint ? `from its last checkpoint (${d.lastCheckpoint})` : 'from the start (no checkpoint yet)';
  const output = d.stderrTail.length ? ` Last output: ${d.stderrTail.slice(-5).join(' | ')}` : '';
  let kind: FailedEvent['kind'];
  let message: string;
  if (d.signal === 'SIGKILL') {
    kind = 'killed';
    const estimate = d.started ? `the run was estimated to need ${gib(d.started.memoryEstimateBytes)} and ${gib(d.started.availableMemoryBytes)} was available when it started` : 'it was killed before it reported its memory estimate';
    const peak = d.peakRssBytes ? `; its peak use was ${gib(d.peakRssBytes)}` : '';
    const checkpointing = d.config.gradientCheckpointing ? '' : ` Resuming with --gradient-checkpointing saves activation memory and keeps the results identical: ${resume} --gradient-checkpointing.`;
    message =
      `the training process was killed (SIGKILL) ${at}. Most likely the machine ran out of memory and the kernel's out-of-memory killer ended it: ${estimate}${peak}. ` +
      `Close other programs, or start a new run with ${memoryAdvice(d.config)}.${checkpointing} The run is resumable ${from}: ${resume}.`;
  } else if (d.signal !== null) {
    kind = NATIVE_CRASH_SIGNALS.includes(d.signal) ? 'crashed' : 'killed';
    const why = kind === 'crashed' ? `crashed (${d.signal}, a fault in the native engine)` : `was stopped by ${d.signal}`;
    message = `the training process ${why} ${at}.${output} The run is resumable ${from}: ${resume}.`;
  } else {
    kind = 'crashed';
    message = `the training process exited with code ${d.code} ${at} without reporting an error.${output} The run is resumable ${from}: ${resume}.`;
  }
  return { type: 'failed', kind, message, step: d.lastStep, resumable: true, checkpoint: d.lastCheckpoint };
}
