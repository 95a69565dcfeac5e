// How long a run will take, said before it starts: its FLOPs (step-flops.ts,
// over the batches the run really has) divided by this machine's measured
// GEMM speed (calibration.ts) times the share of that speed the engine
// reaches for the method. That share is measured, not guessed: bench:cpu
// (native-addon/bench/bench_train.cpp, results in bench/results/cpu.json,
// 2 threads, SmolLM2-135M shape, seq 256) reports engine GFLOP/s / sgemm
// GFLOP/s per configuration with the same FLOP counting. The estimate's own
// accuracy against measured steps is in bench/results/time-estimate.md
// (scripts/bench-time-estimate.mjs). On a GPU there is no measurement yet,
// so no number is said there. A run's evaluations (eval-work.ts: how many,
// and each one's forward over the eval rows) are part of its time: counted
// by the same rules, said when they are a noticeable share of it.
import type { ModelSpec } from '../engine/native.js';
import type { Example } from './data.js';
import type { TrainConfig, TrainMethod } from './config.js';
import { optimizerStepGroups } from './trainer.js';
import { addFlops, microBatchFlops, microBatchShapeOf, NO_FLOPS, stepOverheadFlops, uniformMicroBatch, type FlopSettings, type StepFlops } from './step-flops.js';
import { calibrate, calibrationShape } from './calibration.js';
import { evalWork, type EvalWork } from './eval-work.js';
import type { NativeOps } from '../engine/native.js';

/**
 * Engine GFLOP/s over sgemm GFLOP/s, median step, from bench/results/cpu.json
 * (2026-11-29, 2 threads): lora = the median of lora_all_b1 0.64,
 * lora_all_s1024 0.76, lora_all_b4 0.68, lora_qv_b1 0.67; qlora of
 * qlora_all_b1 0.52 and qlora_all_b4 0.59; full full_b1 0.53; prompt of
 * prompt20_b1 0.68 and prompt100_b1 0.70; prefix prefix20_b1 0.59 and
 * prefix20_proj_b1 0.64 (with its projection MLP).
 */
export const METHOD_EFFICIENCY: Readonly<Record<TrainMethod | 'prefix_projection', number>> = {
  lora: 0.675,
  qlora: 0.555,
  full: 0.53,
  prompt: 0.69,
  prefix: 0.59,
  prefix_projection: 0.64,
};

/**
 * Gradient checkpointing, from the same run: lora_all_b1_ckpt 0.48 against
 * lora_all_b1 0.64 on USEFUL FLOPs. This estimate counts the recomputed
 * forward as work too, so the factor applied to a method's efficiency is
 * (0.48 × work/useful of that bench shape) / 0.64, computed below from the
 * same counting (≈ 1.04: the recompute is all of checkpointing's slowdown,
 * and then some; bench/results/time-estimate.md's lora_all_b1_ckpt efficiency
 * 0.704 is LoRA's 0.675 × 1.043).
 */
const CKPT_BENCH = { useful_ratio: 0.48, plain_ratio: 0.64 };
const SMOLLM2_135M: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3,
  headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 0 },
  maxPositionEmbeddings: 8192, tieWordEmbeddings: true, attentionBias: false, qkNorm: false,
};
export const CHECKPOINTING_FACTOR = (() => {
  const ckpt = microBatchFlops(SMOLLM2_135M, {
    method: 'lora', lora: { rank: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: null },
    virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: true,
  }, uniformMicroBatch(1, 256, 'lora'));
  return (CKPT_BENCH.useful_ratio * (ckpt.total / ckpt.useful)) / CKPT_BENCH.plain_ratio;
})();

/** the spread bench/results/time-estimate.md measured (estimated / measured tokens/s), rounded up */
export const ESTIMATE_SPREAD = 0.3;

export function methodEfficiency(s: Pick<FlopSettings, 'method' | 'prefixEncoderHidden' | 'gradientCheckpointing'>): number {
  const base = s.method === 'prefix' && s.prefixEncoderHidden !== null ? METHOD_EFFICIENCY.prefix_projection : METHOD_EFFICIENCY[s.method];
  return s.gradientCheckpointing ? base * CHECKPOINTING_FACTOR : base;
}

/** What a whole run computes: its optimizer steps over the batches it really has. */
export interface RunWork {
  steps: number;
  /** real (not padding, not virtual) tokens the steps go through */
  tokens: number;
  flops: StepFlops;
}

/** steps beyond this are extrapolated from the mean of those counted (a run of months is not enumerated) */
const COUNTED_STEPS = 20000;

/**
 * The run's work, batch by batch as the trainer forms them
 * (optimizerStepGroups: the seeded shuffle of every epoch, micro-batches
 * padded to their longest row).
 */
export function runWork(spec: ModelSpec, s: FlopSettings, train: readonly Example[],
  o: { totalSteps: number; batchSize: number; gradAccum: number; seed: number }): RunWork {
  if (o.totalSteps <= 0 || train.length === 0) return { steps: Math.max(0, o.totalSteps), tokens: 0, flops: NO_FLOPS };
  let flops = NO_FLOPS, tokens = 0, counted = 0;
  const groups = optimizerStepGroups(train, o.batchSize, o.gradAccum, o.seed);
  const perStep = stepOverheadFlops(spec, s);
  while (counted < Math.min(o.totalSteps, COUNTED_STEPS)) {
    flops = addFlops(flops, perStep);
    for (const rows of groups.next().value as Example[][]) {
      flops = addFlops(flops, microBatchFlops(spec, s, microBatchShapeOf(rows, s.method)));
      tokens += rows.reduce((n, r) => n + r.inputIds.length, 0);
    }
    counted++;
  }
  const scale = o.totalSteps / counted;
  return { steps: o.totalSteps, tokens: tokens * scale, flops: { useful: flops.useful * scale, recompute: flops.recompute * scale, total: flops.total * scale } };
}

/** The yardstick: a measured GEMM speed on this CPU, or none (a GPU: not measured yet). */
export type Speed = { where: 'cpu'; gflops: number } | { where: 'gpu' };

export interface TimeEstimate {
  /** null: nothing measured for where the run goes (a GPU) */
  seconds: number | null;
  gflops: number | null;
  efficiency: number | null;
}

export function estimateSeconds(flops: number, s: FlopSettings, speed: Speed): TimeEstimate {
  if (speed.where === 'gpu') return { seconds: null, gflops: null, efficiency: null };
  const efficiency = methodEfficiency(s);
  return { seconds: flops / (speed.gflops * 1e9 * efficiency), gflops: speed.gflops, efficiency };
}

/**
 * An evaluation's forward runs faster per FLOP than a training step (no
 * backward products in the slower layouts, no optimizer, no weight-gradient
 * passes): its efficiency is the method's (without checkpointing's factor:
 * an evaluation recomputes nothing) times this measured ratio. Measured
 * 2026-11-29 with a one-off script on an AMD EPYC, 2 threads, SmolLM2-135M
 * shape (random weights), 1 x 256 rows, LoRA and QLoRA r=16 on all linears,
 * 20 virtual tokens: engine.evaluate against forwardBackward + optimizerStep
 * on the same batch, interleaved, the fastest of 8 each, both counted by
 * step-flops.ts. lora 1.12, 1.11, 1.09 (at 4 x 256: 1.15); full 1.37, 1.36,
 * 1.36; qlora 1.24, 1.22 (and 2.10 in a run whose training steps another
 * process slowed: left out); prompt 1.16, 1.07, 1.07; prefix 1.09, 1.06.
 * A ratio, not the absolute figure, so that bench:cpu's per-method
 * efficiencies (another CPU) carry over; the forward itself reached
 * 0.79-0.90 of the GEMM yardstick for every method there.
 */
export const EVAL_OVER_TRAIN_EFFICIENCY: Readonly<Record<TrainMethod, number>> = {
  lora: 1.11,
  qlora: 1.23,
  full: 1.36,
  prompt: 1.07,
  prefix: 1.07,
};

/** The share of the GEMM speed an evaluation's forward reaches (see EVAL_OVER_TRAIN_EFFICIENCY). */
export function evalEfficiency(s: Pick<FlopSettings, 'method' | 'prefixEncoderHidden'>): number {
  return methodEfficiency({ ...s, gradientCheckpointing: false }) * EVAL_OVER_TRAIN_EFFICIENCY[s.method];
}

/** A run's time: its training steps and its evaluations together. */
export interface RunTime extends TimeEstimate {
  /** the evaluations' part of `seconds` (null where `seconds` is); null: the run does not evaluate */
  evaluating: { seconds: number | null; evaluations: number; rows: number } | null;
}

/** The evaluations' seconds: 0 for a run that does not evaluate, null where no number is said (a GPU). */
export function evaluatingSeconds(t: RunTime): number | null {
  return t.seconds === null ? null : t.evaluating?.seconds ?? 0;
}

/** Training seconds + evaluating seconds, each at its own efficiency. */
export function estimateRunSeconds(work: RunWork, evaluation: EvalWork, s: FlopSettings, speed: Speed): RunTime {
  const training = estimateSeconds(work.flops.total, s, speed);
  if (evaluation.evaluations === 0) return { ...training, evaluating: null };
  const seconds = speed.where === 'gpu' ? null : evaluation.flops / (speed.gflops * 1e9 * evalEfficiency(s));
  return {
    ...training,
    seconds: training.seconds === null || seconds === null ? null : training.seconds + seconds,
    evaluating: { seconds, evaluations: evaluation.evaluations, rows: evaluation.rows },
  };
}

/**
 * Tokens per second of `batch` full rows of `seqLen`, one micro-batch per
 * optimizer step (inspect's and the Method page's figure); null on a GPU.
 */
export function tokensPerSecond(spec: ModelSpec, s: FlopSettings, batch: number, seqLen: number, speed: Speed): number | null {
  const work = addFlops(microBatchFlops(spec, s, uniformMicroBatch(batch, seqLen, s.method)), stepOverheadFlops(spec, s));
  const t = estimateSeconds(work.total, s, speed);
  return t.seconds === null ? null : (batch * seqLen) / t.seconds;
}

const METHOD_WORDS: Record<TrainMethod, string> = { lora: 'LoRA', qlora: 'QLoRA', full: 'full fine-tuning', prompt: 'prompt tuning', prefix: 'prefix tuning' };

/** "about 41 min", "about 2 h 05 min", "under a minute": an estimate is not said to the second. */
export function roughDuration(seconds: number): string {
  if (seconds < 60) return 'under a minute';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** 2.3M, 45.1k, 812 */
export function compactCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** What a time line needs of the settings: the method, DoRA (a LoRA setting) and checkpointing. */
type TimeWords = Pick<FlopSettings, 'method' | 'gradientCheckpointing'> & { lora?: { dora?: boolean } | null };

/** the evaluations are named in the line when they take more than this share of the run */
export const EVAL_SHARE_SAID = 0.05;

/** ", of which about 6 min evaluating 500 rows 12 times" when that is more than EVAL_SHARE_SAID of the run, else "" */
function evaluatingWords(t: TimeEstimate | RunTime): string {
  const e = 'evaluating' in t ? t.evaluating : null;
  if (!e || e.seconds === null || t.seconds === null || e.seconds <= EVAL_SHARE_SAID * t.seconds) return '';
  const times = e.evaluations === 1 ? 'once' : e.evaluations === 2 ? 'twice' : `${e.evaluations.toLocaleString('en-US')} times`;
  // "under a minute …, of which under a minute evaluating" says nothing: a short run's share as a percentage
  const part = t.seconds < 60 ? `${Math.round((100 * e.seconds) / t.seconds)}%` : roughDuration(e.seconds);
  return `, of which ${part} evaluating ${e.rows.toLocaleString('en-US')} row${e.rows === 1 ? '' : 's'} ${times}`;
}

/** The time part alone: "about 41 min on this CPU (…)" or, on a GPU, when it will be known. */
export function describeTime(t: TimeEstimate | RunTime, s: TimeWords): string {
  if (t.seconds === null) return 'time estimated once the first steps run (no GPU speed has been measured to estimate from)';
  // DoRA is counted as its extra products at LoRA's measured efficiency: bench/results/dora.md measured
  // DoRA's GFLOP/s at 1.02x LoRA's (QDoRA 1.04x QLoRA's), so its slowdown is all extra work
  const dora = (s.method === 'lora' || s.method === 'qlora') && s.lora?.dora === true ? ' (DoRA)' : '';
  const how = `${METHOD_WORDS[s.method]}${dora}${s.gradientCheckpointing ? ' with gradient checkpointing' : ''}`;
  return `${roughDuration(t.seconds)} on this CPU${evaluatingWords(t)} (measured ${t.gflops!.toFixed(0)} GFLOP/s x ${t.efficiency!.toFixed(2)} for ${how}; an estimate, ±${Math.round(ESTIMATE_SPREAD * 100)}%)`;
}

/** The CLI line before training starts. */
export function describeRunTime(work: RunWork, t: TimeEstimate | RunTime, s: TimeWords): string {
  const steps = `${work.steps.toLocaleString('en-US')} step${work.steps === 1 ? '' : 's'}`;
  return `this run: ${steps}, ${compactCount(work.tokens)} tokens; ${describeTime(t, s)}`;
}

/** The FLOP-relevant settings of a run. */
export function flopSettingsOf(config: Pick<TrainConfig, 'method' | 'lora' | 'prompt' | 'prefix' | 'gradientCheckpointing'>, spec: ModelSpec): FlopSettings {
  const prefix = config.method === 'prefix' ? config.prefix : null;
  return {
    method: config.method,
    lora: (config.method === 'lora' || config.method === 'qlora') && config.lora ? config.lora : null,
    virtualTokens: config.method === 'prompt' ? config.prompt?.numVirtualTokens ?? 0 : prefix?.numVirtualTokens ?? 0,
    // PEFT's default encoder_hidden_size is token_dim (head_dim x kv heads)
    prefixEncoderHidden: prefix?.projection ? prefix.encoderHiddenSize ?? spec.headDim * spec.numKvHeads : null,
    gradientCheckpointing: config.gradientCheckpointing,
  };
}

/** This machine's yardstick for a run on the CPU (cached per CPU, threads and shape), or the GPU's "not measured". */
export function speedFor(ops: Pick<NativeOps, 'gemm'>, where: { gpu: boolean; cpuModel: string; threads: number }, spec: ModelSpec, tokensPerMicroBatch: number): Speed {
  if (where.gpu) return { where: 'gpu' };
  const shape = calibrationShape(spec.hiddenSize, spec.intermediateSize, tokensPerMicroBatch);
  return { where: 'cpu', gflops: calibrate(ops, where.cpuModel, where.threads, shape).gflops };
}

/** Everything the CLI line and run.json say about a run's time: its training steps over `train`, its evaluations over `evalRows`. */
export function estimateRunTime(ops: Pick<NativeOps, 'gemm'>, where: { gpu: boolean; cpuModel: string; threads: number }, spec: ModelSpec,
  config: Pick<TrainConfig, 'method' | 'lora' | 'prompt' | 'prefix' | 'gradientCheckpointing' | 'batchSize' | 'gradAccum' | 'seed' | 'seqLen' | 'evalEvery'>,
  train: readonly Example[], totalSteps: number, evalRows: readonly Example[]): { work: RunWork; evalWork: EvalWork; time: RunTime; line: string } {
  const s = flopSettingsOf(config, spec);
  const work = runWork(spec, s, train, { totalSteps, batchSize: config.batchSize, gradAccum: config.gradAccum, seed: config.seed });
  const evaluation = evalWork(spec, s, evalRows, { totalSteps, evalEvery: config.evalEvery, batchSize: config.batchSize });
  const meanRow = train.length ? train.reduce((n, e) => n + e.inputIds.length, 0) / train.length : config.seqLen;
  // one yardstick for both parts: the eval batches are as wide as the training micro-batches (same --batch-size)
  const time = estimateRunSeconds(work, evaluation, s, speedFor(ops, where, spec, Math.min(train.length || 1, config.batchSize) * meanRow));
  return { work, evalWork: evaluation, time, line: describeRunTime(work, time, s) };
}

/** The estimate, or null when it cannot be made (an unreadable home, an addon without ops): it must never stop a run. */
export function safeRunTimeEstimate<T>(make: () => T): T | null {
  try {
    return make();
  } catch {
    return null;
  }
}
