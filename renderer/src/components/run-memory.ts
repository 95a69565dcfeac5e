// A training run's peak memory in parts the Train page can name. The engine
// reports what it holds (weights, gradients + optimizer state, activations,
// on the CPU its threads' scratch); the peak resident size is the whole
// process, whose largest share on a small model is the worker itself (Node,
// the engine's code, the data rows). That rest is said as the difference, so
// the parts add up to the peak instead of leaving most of it unexplained.
import type { MemoryUsage } from '../state/run-monitor.svelte.js';

export interface MemoryPart {
  label: string;
  bytes: number;
}

/** What the rest of the peak is: the engine does not count it, the process holds it. */
export const PROCESS_PART = "the process itself (Node, the engine's code, the data rows)";

/**
 * The peak's parts: the engine's own (scratch only where there is any: a GPU
 * run has none on the host), then the process itself, the peak less those
 * (never negative: the parts are sizes now, the peak the most held so far,
 * and pages the engine holds but never touched are not resident).
 */
export function memoryParts(m: MemoryUsage): MemoryPart[] {
  const parts: MemoryPart[] = [
    { label: 'weights', bytes: m.weightBytes },
    { label: 'gradients + optimizer', bytes: m.trainableBytes },
    { label: 'activations', bytes: m.activationBytes },
  ];
  if (m.scratchPeakBytes > 0) parts.push({ label: "CPU threads' scratch", bytes: m.scratchPeakBytes });
  const counted = parts.reduce((sum, p) => sum + p.bytes, 0);
  parts.push({ label: PROCESS_PART, bytes: Math.max(0, m.peakRssBytes - counted) });
  return parts;
}
