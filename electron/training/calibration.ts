// This machine's dense-product speed, the yardstick of the time estimate
// (time-estimate.ts): the addon's own GEMM (nt: C[M,N] = X[M,K]·W[N,K]ᵀ, the
// layout of every projection's forward) on the model's dominant projection
// shape (gate/up: N = intermediate, K = hidden) at the run's tokens per step,
// a few repeats, the fastest kept (the machine may be busy). bench:cpu's
// efficiencies are relative to OpenBLAS sgemm on that shape, which the
// addon's GEMM matches within a few percent (bench/results/cpu.json gemm).
//
// Measured once per machine and shape and kept in the studio home
// (calibration.json): keyed by the CPU model, the thread count and the shape,
// so another thread count is measured again. A broken or foreign file is
// ignored (and replaced), never an error: the estimate is a convenience.
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { NativeOps } from '../engine/native.js';
import { studioHome } from '../runs/run-index.js';
import { cpuBudget } from '../system/machine.js';

export const CALIBRATION_FILE = 'calibration.json';
const FORMAT = 'peft-studio-gemm-calibration';
/** the cache keeps this many shapes / machines; the oldest go first */
const MAX_ENTRIES = 32;

/** the measured shape: kept modest so a measurement takes a fraction of a second even for a 70B model */
export interface GemmShape {
  M: number;
  N: number;
  K: number;
}

export interface Calibration {
  cpu: string;
  threads: number;
  shape: GemmShape;
  gflops: number;
  measured_at: string;
  /** false: read from the cache */
  measured: boolean;
}

/**
 * The shape measured for a model (hidden, intermediate) at `tokens` per
 * micro-batch: M clamped to 64..512 and N, K capped, so one product stays
 * within ~12 GFLOP (tens of milliseconds at the speeds bench:cpu sees) while
 * large enough for the GEMM to reach its steady speed.
 */
export function calibrationShape(hidden: number, intermediate: number, tokens: number): GemmShape {
  const M = Math.min(512, Math.max(64, Math.round(tokens / 64) * 64 || 64));
  return { M, N: Math.min(intermediate, 5632), K: Math.min(hidden, 2048) };
}

export function calibrationFile(): string {
  return join(studioHome(), CALIBRATION_FILE);
}

function keyOf(cpu: string, threads: number, s: GemmShape): string {
  return `${cpu}|${threads}|${s.M}x${s.N}x${s.K}`;
}

type CacheEntry = Omit<Calibration, 'measured'>;

function readCache(file: string): CacheEntry[] {
  try {
    const doc: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof doc !== 'object' || doc === null || (doc as { format?: unknown }).format !== FORMAT) return [];
    const entries = (doc as { entries?: unknown }).entries;
    if (!Array.isArray(entries)) return [];
    return entries.filter((e): e is CacheEntry => typeof e === 'object' && e !== null &&
      typeof e.cpu === 'string' && Number.isInteger(e.threads) && typeof e.gflops === 'number' && Number.isFinite(e.gflops) && e.gflops > 0 &&
      typeof e.shape === 'object' && e.shape !== null && [e.shape.M, e.shape.N, e.shape.K].every((v: unknown) => Number.isInteger(v)));
  } catch {
    return []; // absent, unreadable or not JSON: measure again
  }
}

function writeCache(file: string, entries: CacheEntry[]): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ format: FORMAT, entries: entries.slice(-MAX_ENTRIES) }, null, 2)}\n`);
    renameSync(tmp, file);
  } catch {
    // a read-only home: the next estimate measures again, which is all it costs
  }
}

/** GFLOP/s of the best of `repeats` nt products of `shape` (after one warm-up). */
export function measureGemm(ops: Pick<NativeOps, 'gemm'>, shape: GemmShape, threads: number, repeats = 3): number {
  const { M, N, K } = shape;
  const A = new Float32Array(M * K), B = new Float32Array(N * K), C = new Float32Array(M * N);
  // values do not change the speed; small varied ones keep every lane busy with normal numbers
  for (let i = 0; i < A.length; i++) A[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  for (let i = 0; i < B.length; i++) B[i] = ((i * 104729) % 1000) / 1000 - 0.5;
  ops.gemm('nt', M, N, K, 1, A, B, 0, C, threads);
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    ops.gemm('nt', M, N, K, 1, A, B, 0, C, threads);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return (2 * M * N * K) / Math.max(best, 1e-9) / 1e9;
}

/**
 * The cached speed for this CPU, thread count and shape, or a fresh measurement (then cached).
 * `machineThreads`: the threads this machine runs at once, within a container's CPU quota
 * (machine.ts cpuBudget; a parameter so tests can pin it).
 */
export function calibrate(ops: Pick<NativeOps, 'gemm'>, cpu: string, requestedThreads: number, shape: GemmShape, file = calibrationFile(),
  machineThreads = cpuBudget().threads): Calibration {
  // more threads than the machine (or its container's quota) runs at once run no faster, and a thread pool of
  // 100,000 cannot even be made: measure what can run
  const threads = Math.max(1, Math.min(Math.floor(requestedThreads) || 1, machineThreads));
  const entries = readCache(file);
  const key = keyOf(cpu, threads, shape);
  const hit = entries.find((e) => keyOf(e.cpu, e.threads, e.shape) === key);
  if (hit) return { ...hit, measured: false };
  const entry: CacheEntry = { cpu, threads, shape, gflops: measureGemm(ops, shape, threads), measured_at: new Date().toISOString() };
  writeCache(file, [...entries, entry]);
  return { ...entry, measured: true };
}
