// Which token-length bins the histogram draws.
import type { DatasetReport } from '../../../electron/api/contract.js';

type Bin = DatasetReport['lengths']['bins'][number];

/**
 * From the first bin to whichever comes last of: the last non-empty bin,
 * the bin holding the sequence length. Empty bins beyond both are left
 * out; none at all when every bin is empty.
 */
export function visibleBins(bins: readonly Bin[], seqLen: number): Bin[] {
  let last = -1;
  bins.forEach((b, i) => {
    if (b.count > 0) last = i;
  });
  if (last < 0) return [];
  const seqBin = bins.findIndex((b) => b.min <= seqLen && (b.max === null || seqLen <= b.max));
  return bins.slice(0, Math.max(last, seqBin) + 1);
}
