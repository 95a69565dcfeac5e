// What the parent says when the child died without a word (no end event):
// killed by a signal, a native crash, a non-zero exit. SIGKILL is most likely
// the kernel's out-of-memory killer when the run's memory was tight, else it
// may as well be the user: the message carries the run's memory estimate,
// what was free, and what to change. An allocation failure inside the engine
// gets the same figures (outOfMemoryMessage).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
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
  /** the child printed V8's fatal heap error: its JavaScript heap passed the limit (given: the limit it had, in MiB) */
  heapOutOfMemory?: { limitMiB: number } | null;
  /** false when the run folder has no run.json (the child died before writing it): nothing to resume */
  runRecorded?: boolean;
  /**
   * The parent killed the child itself, on the user's request (a second
   * Ctrl-C, the app's stop): then the signal says nothing about memory.
   */
  stoppedByUser?: boolean;
  /** the app ended it at once while shutting down (its step outlasted the grace the app waits for a checkpoint) */
  stoppedByShutdown?: boolean;
}

export function memoryAdvice(config: TrainConfig): string {
  const advice: string[] = [];
  if (config.batchSize > 1) advice.push('a smaller --batch-size (with --grad-accum to keep the effective batch)');
  advice.push('a shorter --seq-len');
  if (config.method !== 'full' && (config.lora?.rank ?? 0) > 4) advice.push('a lower --rank');
  if (config.method === 'full') advice.push('--method lora');
  return advice.join(', ');
}

/** Above this share of the available memory, a SIGKILL is most likely the out-of-memory killer. */
export const TIGHT_MEMORY_SHARE = 0.8;

/** Whether the run's estimate, or the peak it reported in its step events, came close to the memory the machine had. */
export function memoryWasTight(d: Pick<ChildDeath, 'started' | 'peakRssBytes'>): boolean {
  if (!d.started) return false;
  const limit = TIGHT_MEMORY_SHARE * d.started.availableMemoryBytes;
  return d.started.memoryEstimateBytes > limit || (d.peakRssBytes !== null && d.peakRssBytes > limit);
}

/** An error from the native engine that says an allocation failed (std::bad_alloc, ps::OutOfMemory, V8's). */
export function isOutOfMemoryError(message: string): boolean {
  return /bad_alloc|out of memory|OutOfMemory|Cannot allocate memory|ENOMEM|Array buffer allocation failed/i.test(message);
}

/**
 * The failed message of a run whose engine could not allocate: what ran out,
 * the pre-flight estimate against what was free, and what to change.
 */
export function outOfMemoryMessage(engineMessage: string, memory: { estimateBytes: number; availableBytes: number; where?: string; gpu?: boolean } | null, config: TrainConfig, at: string): string {
  const figures = memory
    ? `the run was estimated to need ${gib(memory.estimateBytes)} and ${gib(memory.availableBytes)} was available${memory.where ? ` ${memory.where}` : ''} when it started`
    : 'its memory estimate was not computed yet';
  const checked = config.ignoreMemoryCheck && memory && memory.estimateBytes > memory.availableBytes ? ' (--ignore-memory-check started it anyway)' : '';
  const checkpointing = config.gradientCheckpointing ? '' : ', --gradient-checkpointing';
  // on a GPU: other processes may hold its memory (nvidia-smi lists them), and the CPU is a way out (in fp32: it has no bf16)
  const elsewhere = memory?.gpu ? ` (nvidia-smi lists what holds the GPU), continue on the CPU with peft-studio train --resume ${config.out} --device cpu${config.precision === 'bf16' ? ' --precision fp32' : ''}` : '';
  return (
    `the run ran out of memory ${at}: the engine could not allocate memory (${engineMessage.trim()}); ${figures}${checked}. ` +
    `Close other programs${elsewhere}, or start a new run with ${memoryAdvice(config)}${checkpointing}.`
  );
}

/** The model's .safetensors files by name, for a message; the folder when they cannot be listed. */
function weightFilesOf(modelDir: string): string {
  try {
    const files = readdirSync(modelDir).filter((n) => n.endsWith('.safetensors')).sort();
    if (files.length > 0) return files.length <= 3 ? files.map((n) => join(modelDir, n)).join(', ') : `${join(modelDir, files[0])} and the other ${files.length - 1} .safetensors files beside it`;
  } catch {
    // gone or unreadable: the folder is all that can be named
  }
  return `the .safetensors files in ${modelDir}`;
}

export function explainChildDeath(d: ChildDeath): FailedEvent {
  const at = d.lastStep === null ? 'before its first step' : `after step ${d.lastStep}`;
  const resume = `peft-studio train --resume ${d.config.out}`;
  const from = d.lastCheckpoint ? `from its last checkpoint (${d.lastCheckpoint})` : 'from the start (no checkpoint yet)';
  const output = d.stderrTail.length ? ` Last output: ${d.stderrTail.slice(-5).join(' | ')}` : '';
  // a process that died before it wrote run.json left nothing to resume: the same command starts it again
  const recorded = d.runRecorded !== false;
  const after = recorded ? `The run is resumable ${from}: ${resume}.` : `Nothing of the run was saved (it stopped before writing ${d.config.out}/run.json): start it again.`;
  let kind: FailedEvent['kind'];
  let message: string;
  if (d.stoppedByShutdown && d.signal !== null) {
    kind = 'killed';
    message =
      `the training was stopped at once because PEFT Studio shut down ${at}: its step did not end within the time the app waits for a checkpoint, so the process was ended with ${d.signal}, ` +
      `without a checkpoint of the steps since the last one. ${after}`;
  } else if (d.stoppedByUser && d.signal !== null) {
    kind = 'killed';
    message =
      `the training was stopped at once at the user's request (a second Ctrl-C, or Stop) ${at}: the process was ended with ${d.signal}, without a checkpoint of the steps since the last one. ` +
      `${after}`;
  } else if (d.signal === 'SIGKILL') {
    kind = 'killed';
    const estimate = d.started ? `the run was estimated to need ${gib(d.started.memoryEstimateBytes)} and ${gib(d.started.availableMemoryBytes)} was available when it started` : 'it was killed before it reported its memory estimate';
    const peak = d.peakRssBytes ? `; its peak use was ${gib(d.peakRssBytes)}` : '';
    const resumable = `${after}`;
    if (memoryWasTight(d)) {
      const checkpointing = d.config.gradientCheckpointing ? '' : ` Resuming with --gradient-checkpointing saves activation memory and keeps the results identical: ${resume} --gradient-checkpointing.`;
      message =
        `the training process was killed (SIGKILL) ${at}, most likely out of memory (the kernel's out-of-memory killer): ${estimate}${peak}. ` +
        `Close other programs, or start a new run with ${memoryAdvice(d.config)}.${checkpointing} ${resumable}`;
    } else {
      // Memory was far from the limit: blaming it would send the user after the wrong cause.
      message =
        `the training process was killed by SIGKILL (by the user, or by the system when memory ran out) ${at}; ${estimate}${peak}. ` +
        `If memory did run out (other programs grew meanwhile), close them, or use ${memoryAdvice(d.config)}. ${resumable}`;
    }
  } else if (d.heapOutOfMemory) {
    // V8 aborts the process (SIGABRT) with its own stack trace: not the engine's fault, and the trace says nothing to the user
    kind = 'crashed';
    message =
      `the training process ran out of JavaScript heap ${at}: Node stops a process whose heap passes its limit (about ${d.heapOutOfMemory.limitMiB.toLocaleString('en')} MiB ` +
      `for the training process), and the data's rows live partly there (about 340 bytes of objects a row beside their tokens), with the tokenizer. ` +
      `Train on fewer rows (a part of the dataset in a file of its own), or on a machine with more memory; a resume reads the same rows again. ` +
      `${after}`;
  } else if (d.signal === 'SIGBUS') {
    // The model's weights are memory-mapped: a read past the end of a file that shrank (or was replaced) under the run is a SIGBUS.
    kind = 'crashed';
    message = `the training process crashed (SIGBUS) ${at}: it read a memory-mapped file that was no longer there in full. Most likely the model's weight file ` +
      `(${weightFilesOf(d.config.model)}) changed or shrank while the run used it: overwritten by a download or copy, truncated, or on a disk that went away. ` +
      `Check that the model folder is complete again (the same files the run started with${recorded ? ': the resume checks them), then resume: ' + resume : '), then start the run again'}.${output}`;
  } else if (d.signal !== null) {
    kind = NATIVE_CRASH_SIGNALS.includes(d.signal) ? 'crashed' : 'killed';
    const why = kind === 'crashed' ? `crashed (${d.signal}, a fault in the native engine)` : `was stopped by ${d.signal}`;
    message = `the training process ${why} ${at}.${output} ${after}`;
  } else {
    kind = 'crashed';
    message = `the training process exited with code ${d.code} ${at} without reporting an error.${output} ${after}`;
  }
  return { type: 'failed', kind, message, step: d.lastStep, resumable: recorded, checkpoint: d.lastCheckpoint };
}
