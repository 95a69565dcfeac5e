// @vitest-environment node
// The Train page's memory line: the engine's parts, then the rest of the peak as the process itself.
import { describe, expect, it } from 'vitest';

import { memoryParts, PROCESS_PART } from './run-memory.js';

const MiB = 1024 * 1024;
const usage = { weightBytes: 3.7 * MiB, quantizedBytes: 0, quantizedParams: 0, trainableBytes: 240 * 1024, activationBytes: 5.7 * MiB, kvCacheBytes: 0, scratchBytes: 0, scratchPeakBytes: 0, peakRssBytes: 97.4 * MiB };

describe('memoryParts', () => {
  it('names the rest of the peak the process itself, so the parts add up to it', () => {
    // the reviewer's run: 97.4 MiB peak, of which the engine held 3.7 MiB + 240 KiB + 5.7 MiB
    expect(memoryParts(usage)).toEqual([
      { label: 'weights', bytes: 3.7 * MiB },
      { label: 'gradients + optimizer', bytes: 240 * 1024 },
      { label: 'activations', bytes: 5.7 * MiB },
      { label: PROCESS_PART, bytes: 97.4 * MiB - 3.7 * MiB - 240 * 1024 - 5.7 * MiB },
    ]);
    expect(PROCESS_PART).toBe("the process itself (Node, the engine's code, the data rows)");
  });
  it('lists the CPU threads\' scratch where there is any, and never a negative rest', () => {
    const parts = memoryParts({ ...usage, scratchPeakBytes: 2 * MiB });
    expect(parts.map((p) => p.label)).toEqual(['weights', 'gradients + optimizer', 'activations', "CPU threads' scratch", PROCESS_PART]);
    expect(parts[3].bytes).toBe(2 * MiB);
    expect(parts[4].bytes).toBeCloseTo(97.4 * MiB - 3.7 * MiB - 240 * 1024 - 5.7 * MiB - 2 * MiB, 6);
    // parts sized now above a peak that never touched all their pages
    expect(memoryParts({ ...usage, peakRssBytes: 4 * MiB }).at(-1)).toEqual({ label: PROCESS_PART, bytes: 0 });
  });
});
