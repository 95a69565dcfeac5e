// What a run will write to its folder's disk, said before it starts: a full
// fine-tuning run of a 1B model writes a 4.4 GiB model and, with --save-every,
// checkpoints of about 13 GiB each (the model and AdamW's two moments), so a
// disk that runs out at the tenth checkpoint would stop a run hours in. The
// run stops cleanly then (execute.ts keeps its state), but the time is lost;
// this check tells before the first step.
//
// The figures are the files' own sizes (the safetensors layouts the writers
// use), so "about" only covers the small files and metrics.jsonl's lines.
// How many checkpoints are on the disk at once follows checkpoint-prune.ts:
// a new checkpoint is complete before the oldest beyond --keep-checkpoints is
// removed, so with K kept the disk holds K + 1 for a moment.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freeBytes } from '../files/disk-space.js';
import { fullModelFileBytes, SIDE_FILES } from '../export/model-folder.js';
import { expectedTensors, type ModelFolder } from '../models/folder.js';
import type { ModelSpec } from '../engine/native.js';
import { loraTensorShapes } from '../adapters/peft.js';
import { encoderHiddenSizeOf, prefixTableWidth, prefixTokenDim, promptEmbeddingsShape } from '../adapters/prompt-config.js';
import { PREFIX_ENCODER_TENSORS, PREFIX_TENSOR, PROMPT_TENSOR, type AdapterLayout } from '../adapters/layout.js';
import { safetensorsFileSize } from '../safetensors/write.js';
import { adapterFileBytes } from '../training/adapter-files.js';
import { adapterLayoutOf, type TrainConfig } from '../training/config.js';
import { bytesInWords } from '../text/bytes.js';
import { COMPLETE_MARKER } from './checkpoint-format.js';
import { listCheckpoints } from './checkpoint-read.js';
import { keptStateDir } from './kept-state.js';

/** A metrics.jsonl line of one step (about 225 bytes measured, with room for larger figures) and of one evaluation. */
const STEP_LINE_BYTES = 256;
const EVAL_LINE_BYTES = 128;
/** A new run's small files (run.json, the adapter's config and README) stay under this; a resumed run's (run.json is there) under the second. */
const SMALL_FILES_BYTES = 64 * 1024;
const RESUMED_SMALL_FILES_BYTES = 16 * 1024;
/** A checkpoint's files beside the weights and state, not counted exactly: trainer_state.json, adapter_config.json, README.md, COMPLETE (about 3.5 KiB in all; checkpoint-write.ts says a full disk's need with it too). */
const CHECKPOINT_SMALL_FILES_BYTES = 4 * 1024;

export interface DiskNeedInput {
  /** the result file the run writes at the end: the adapter's safetensors, or the full model's (with its side files) */
  resultBytes: number;
  /** what a checkpoint holds beside the result: the optimizer's file, prefix tuning's encoder (checkpointStateBytes) */
  stateBytes: number;
  totalSteps: number;
  saveEvery: number;
  /** complete checkpoints kept (0 = all) */
  keepCheckpoints: number;
  keepBest: boolean;
  evalEvery: number;
  /** a resumed run: the step it continues from and the complete checkpoints already in its folder */
  resumed?: { fromStep: number; checkpoints: number } | null;
}

export interface DiskNeed {
  /** bytes the run adds to its disk at its fullest */
  bytes: number;
  /** one checkpoint's files */
  checkpointBytes: number;
  /** checkpoints on the disk at the fullest moment (already there included) */
  checkpointsAtOnce: number;
  /** the fullest moment is a stop's: the checkpoint a stop writes is one more than --save-every's ever are at once */
  stopCheckpoint: boolean;
  /** of those, the ones a resumed run found in place (not counted in bytes) */
  checkpointsThere: number;
  resultBytes: number;
  /** best/: a second copy of the adapter (--keep-best), 0 without */
  bestBytes: number;
  metricsBytes: number;
}

/** The bytes of one checkpoint of a run: its weights, its state (the optimizer's moments, prefix tuning's encoder), the small files. */
export function checkpointBytesOf(input: Pick<DiskNeedInput, 'resultBytes' | 'stateBytes'>): number {
  return input.resultBytes + input.stateBytes + CHECKPOINT_SMALL_FILES_BYTES;
}

/**
 * The tensors a run trains, by the engine's names and shapes (the optimizer keeps moments of each): the
 * model's for full fine-tuning (layout null), else the adapter's; prefix tuning with a projection trains
 * its encoder (the embedding and the MLP, PEFT's PrefixEncoder), whose table the adapter file then holds.
 */
export function trainableTensors(spec: ModelSpec, layout: AdapterLayout | null): { name: string; shape: number[] }[] {
  if (layout === null) return expectedTensors(spec);
  if (layout.kind === 'lora') return loraTensorShapes(spec, layout.lora);
  if (layout.kind === 'prompt') return [{ name: PROMPT_TENSOR, shape: promptEmbeddingsShape('prompt', layout.prompt.numVirtualTokens, spec) }];
  const nvt = layout.prefix.numVirtualTokens;
  if (!layout.prefix.projection) return [{ name: PREFIX_TENSOR, shape: promptEmbeddingsShape('prefix', nvt, spec) }];
  const token = prefixTokenDim(spec), hidden = encoderHiddenSizeOf(layout.prefix, spec), width = prefixTableWidth(spec);
  const shapes = [[nvt, token], [hidden, token], [hidden], [width, hidden], [width]];
  return PREFIX_ENCODER_TENSORS.map((name, i) => ({ name, shape: shapes[i] }));
}

/**
 * What a checkpoint holds beside the result, as its writers lay it out (runs/optimizer-file.ts:
 * AdamW's exp_avg and exp_avg_sq of every trained tensor in fp32, none for plain SGD; prefix-encoder-file.ts).
 */
export function checkpointStateBytes(spec: ModelSpec, layout: AdapterLayout | null, optimizer: 'adamw' | 'sgd', totalSteps: number): number {
  const trained = trainableTensors(spec, layout);
  const numel = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);
  const moments = optimizer === 'adamw' ? trained.flatMap((t) => [
    { name: `${t.name}.exp_avg`, dtype: 'F32' as const, shape: [numel(t.shape)] },
    { name: `${t.name}.exp_avg_sq`, dtype: 'F32' as const, shape: [numel(t.shape)] },
  ]) : [];
  const optimizerFile = safetensorsFileSize(moments, { format: 'peft-studio-optimizer', step: String(totalSteps) });
  const encoder = layout?.kind === 'prefix' && layout.prefix.projection
    ? safetensorsFileSize(trained.map((t) => ({ ...t, dtype: 'F32' as const })), { format: 'peft-studio-prefix-encoder' })
    : 0;
  return optimizerFile + encoder;
}

/**
 * What the run adds to its disk at its fullest (see the file's comment). Checkpoints on the disk at once, with
 * K kept (0: all) and `there` in place: each write adds one before the prune takes the oldest beyond K away, so
 * the first write holds there + 1 and later ones at most K + 1; a stop between two steps (Ctrl-C, Cancel, the
 * app closing: execute.ts) writes one more beside those it holds then, whatever --save-every says; the final
 * result is written beside the last ones kept.
 */
export function runDiskNeed(input: DiskNeedInput): DiskNeed {
  const checkpointBytes = checkpointBytesOf(input);
  const total = input.totalSteps;
  const from = input.resumed?.fromStep ?? 0;
  const there = input.resumed?.checkpoints ?? 0;
  const every = input.saveEvery;
  const keep = input.keepCheckpoints;
  // scheduled writes after `from`, up to step s
  const writesUpTo = (s: number) => (every > 0 && s > from ? Math.floor(s / every) - Math.floor(from / every) : 0);
  const held = (writes: number) => (writes === 0 ? there : keep > 0 ? Math.min(there + writes, keep) : there + writes);
  const writes = writesUpTo(total);
  const atEnd = held(writes);
  const scheduled = writes === 0 ? there : keep > 0 ? Math.max(there + 1, Math.min(there + writes, keep + 1)) : there + writes;
  // a stop can come after any step but the last (which finishes the run), beside what is held by then
  const stop = total - from >= 2 ? Math.max(there, held(writesUpTo(total - 1))) + 1 : 0;
  const atOnce = Math.max(scheduled, stop);
  const bestBytes = input.keepBest ? input.resultBytes : 0;
  const steps = Math.max(0, input.totalSteps - from);
  const evals = input.evalEvery > 0 ? Math.floor(input.totalSteps / input.evalEvery) - Math.floor(from / input.evalEvery) : 0;
  const metricsBytes = steps * STEP_LINE_BYTES + evals * EVAL_LINE_BYTES + (input.resumed ? RESUMED_SMALL_FILES_BYTES : SMALL_FILES_BYTES);
  // the result is written once the last checkpoint is in place
  const fullest = Math.max(atOnce * checkpointBytes, atEnd * checkpointBytes + input.resultBytes);
  const bytes = Math.max(0, fullest - there * checkpointBytes) + bestBytes + metricsBytes;
  return { bytes, checkpointBytes, checkpointsAtOnce: atOnce, stopCheckpoint: stop > scheduled, checkpointsThere: there, resultBytes: input.resultBytes, bestBytes, metricsBytes };
}

/** The full model's side files (tokenizer, configs) a full fine-tuning run copies beside its weights, in bytes. */
export function sideFileBytes(modelDir: string): number {
  let bytes = 0;
  for (const name of SIDE_FILES) bytes += statSync(join(modelDir, name), { throwIfNoEntry: false })?.size ?? 0;
  return bytes;
}

/**
 * The need's input for a run of `config` on `folder`: its result file (the
 * adapter, or the full model with its side files), a checkpoint's state, its
 * steps and checkpoint settings.
 */
export function runDiskInput(config: TrainConfig, folder: ModelFolder, totalSteps: number,
  resumed: DiskNeedInput['resumed']): { input: DiskNeedInput; result: 'adapter' | 'model' } {
  const layout = adapterLayoutOf(config);
  const resultBytes = layout ? adapterFileBytes(folder.spec, layout) : fullModelFileBytes(folder.spec) + sideFileBytes(folder.dir);
  return {
    input: {
      resultBytes, stateBytes: checkpointStateBytes(folder.spec, layout, config.optimizer, totalSteps),
      totalSteps, saveEvery: config.saveEvery, keepCheckpoints: config.keepCheckpoints, keepBest: config.keepBest, evalEvery: config.evalEvery, resumed,
    },
    result: layout ? 'adapter' : 'model',
  };
}

/**
 * Where a resume of `runDir` stands on its disk: the complete checkpoints in
 * place (kept until newer ones replace them), and the step it continues from:
 * the newest one's, or a newer state kept in the studio home when a write to
 * the run folder failed (kept-state.ts; `runKey`: run.json's created_at).
 */
export async function checkpointsInPlace(runDir: string, runKey?: string): Promise<{ fromStep: number; checkpoints: number }> {
  const complete = async (dir: string) => (await listCheckpoints(dir)).filter((c) => existsSync(join(c.dir, COMPLETE_MARKER)));
  const inRun = await complete(runDir);
  const kept = runKey === undefined ? [] : await complete(keptStateDir(runKey));
  return { fromStep: Math.max(inRun[0]?.step ?? 0, kept[0]?.step ?? 0), checkpoints: inRun.length };
}

export interface DiskCheck {
  need: DiskNeed;
  /** bytes free to this user on the disk of the run folder (its nearest existing folder); null: the system cannot tell */
  freeBytes: number | null;
  fits: boolean;
}

/**
 * The run's need against what the disk of `out` has free; `freed`: bytes the run removes before it writes (a new
 * run in an old run's folder clears the old files first: execute.ts claimRecord).
 */
export async function checkRunDisk(out: string, input: DiskNeedInput, freed = 0): Promise<DiskCheck> {
  const need = runDiskNeed(input);
  const disk = await freeBytes(out);
  const free = disk === null ? null : disk + freed;
  return { need, freeBytes: free, fits: free === null || need.bytes <= free };
}

/** What the need is made of, in words: "3 checkpoints of 1.2 GiB at once, the adapter 40 MiB, the best adapter 40 MiB, metrics and run files 80 KiB". */
export function diskNeedParts(need: DiskNeed, result: 'adapter' | 'model'): string {
  const parts: string[] = [];
  if (need.checkpointsAtOnce > 0) {
    const there = need.checkpointsThere > 0 ? ` (${need.checkpointsThere} already there)` : '';
    const stop = need.stopCheckpoint ? `, ${need.checkpointsAtOnce === 1 ? 'the one' : 'with the one'} a stop writes (Ctrl-C, Cancel, closing the app)` : '';
    parts.push(`${need.checkpointsAtOnce.toLocaleString('en-US')} checkpoint${need.checkpointsAtOnce === 1 ? '' : 's'} of ${bytesInWords(need.checkpointBytes)} at once${there}${stop}`);
  }
  parts.push(`the ${result} ${bytesInWords(need.resultBytes)}`);
  if (need.bestBytes > 0) parts.push(`the best ${result} ${bytesInWords(need.bestBytes)}`);
  parts.push(`metrics and run files ${bytesInWords(need.metricsBytes)}`);
  return parts.join(', ');
}

/** How a refusal names its ways out: the command line's flags, or the form's fields (service/run-check.ts). */
export interface DiskWords {
  /** "--keep-checkpoints 1" */
  keepOne: string;
  /** "choose an --out on a disk with room" */
  otherDisk: string;
  /** "; --ignore-disk-check starts it anyway" */
  anyway: string;
}
export const CLI_DISK_WORDS: DiskWords = {
  keepOne: '--keep-checkpoints 1',
  otherDisk: 'choose an --out on a disk with room',
  anyway: '; --ignore-disk-check starts it anyway',
};

/**
 * The refusal when the need exceeds the free space, null when it fits (or the
 * free space is unknown): what the run writes, of what, and the ways out.
 */
export function diskShortfall(out: string, check: DiskCheck, input: DiskNeedInput, result: 'adapter' | 'model', words: DiskWords = CLI_DISK_WORDS): string | null {
  if (check.fits || check.freeBytes === null) return null;
  const { need, freeBytes: free } = check;
  const ways = [`Free ${bytesInWords(need.bytes - free)} there`];
  if (need.checkpointsAtOnce > 2 && input.keepCheckpoints !== 1) {
    const one = runDiskNeed({ ...input, keepCheckpoints: 1 });
    ways.push(`keep one checkpoint (${words.keepOne}: about ${bytesInWords(one.bytes)})`);
  }
  // a resumed run's folder is where it is: the other ways out stay
  if (!input.resumed) ways.push(words.otherDisk);
  return `${diskNeedInWords(out, check, result)}. ${ways.length === 1 ? ways[0] : `${ways.slice(0, -1).join(', ')} or ${ways[ways.length - 1]}`}${words.anyway}.`;
}

/** "OUT: the run writes about X there (its parts) and its disk has Y free": the refusal's first half, and the warning of a run started anyway. */
export function diskNeedInWords(out: string, check: DiskCheck, result: 'adapter' | 'model'): string {
  const free = check.freeBytes === null ? 'an unknown amount' : bytesInWords(check.freeBytes);
  return `${out}: the run writes about ${bytesInWords(check.need.bytes)} there (${diskNeedParts(check.need, result)}) and its disk has ${free} free`;
}
