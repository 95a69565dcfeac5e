// What a line chart draws: named series of (x, y) points, and how an axis
// writes its numbers. Kept apart from the component so pages build series
// without importing chart.js.

export interface ChartPoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  label: string;
  points: readonly ChartPoint[];
  /** a canvas colour (CSS variables do not reach the canvas) */
  color: string;
  /** draw a dot at each point: for sparse series such as eval loss */
  dots?: boolean;
  dashed?: boolean;
}

/** Series colours that read on the light and the dark theme alike. */
export const SERIES_COLORS = {
  loss: '#2f6fb3',
  evalLoss: '#d0743c',
  lr: '#5ea89a',
} as const;

/**
 * One colour per run where several runs share a chart (the Runs page's
 * comparison), in the order runs are picked. Each stands at least 3:1 against
 * the card's surface in the light and the dark theme (WCAG's contrast for
 * graphics; theme-contrast.test.ts checks it).
 */
export const RUN_COLORS = ['#2f6fb3', '#d35400', '#2e8b57', '#9b59b6', '#e0457b', '#00897b', '#b8860b', '#8a6d3b'] as const;

/**
 * A value in a tooltip or the chart's text summary: small values (learning
 * rates) in scientific notation, the rest with up to four significant digits.
 */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (value === 0) return '0';
  const a = Math.abs(value);
  if (a < 1e-3 || a >= 1e6) return value.toExponential(2).replace('e-', 'e−');
  return String(Number(value.toPrecision(4)));
}

/** The number of points drawn, for the e2e tests' "the chart updated" check. */
export function pointCount(series: readonly ChartSeries[]): number {
  return series.reduce((n, s) => n + s.points.length, 0);
}

/** The steps a settled view leaves out: this share of the first series' points (the start of a run). */
export const SETTLED_SKIP_SHARE = 0.1;
/** at least this many points before a view leaves any out */
export const SETTLED_MIN_POINTS = 20;

/**
 * The y range that shows how a long run goes on: its loss starts far above
 * where it settles, and an axis scaled to that start flattens everything
 * after it. The range of every point after the first tenth of the first
 * series (a small margin around it), or null when the start does not
 * squeeze the rest (the whole range is less than twice the rest's).
 */
export function settledRange(series: readonly ChartSeries[]): { min: number; max: number } | null {
  const main = series[0]?.points ?? [];
  if (main.length < SETTLED_MIN_POINTS) return null;
  const fromX = main[Math.floor(main.length * SETTLED_SKIP_SHARE)].x;
  let lo = Infinity;
  let hi = -Infinity;
  let allLo = Infinity;
  let allHi = -Infinity;
  for (const s of series) {
    for (const p of s.points) {
      if (!Number.isFinite(p.y)) continue;
      allLo = Math.min(allLo, p.y);
      allHi = Math.max(allHi, p.y);
      if (p.x < fromX) continue;
      lo = Math.min(lo, p.y);
      hi = Math.max(hi, p.y);
    }
  }
  if (!Number.isFinite(lo) || allHi - allLo < 2 * (hi - lo) || allHi - allLo === 0) return null;
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  return { min: lo - pad, max: hi + pad };
}

/** The lowest finite y of every series (Infinity when there is none). */
export function lowestPoint(series: readonly ChartSeries[]): number {
  let lo = Infinity;
  for (const s of series) for (const p of s.points) if (Number.isFinite(p.y)) lo = Math.min(lo, p.y);
  return lo;
}

/**
 * The y limits a chart hands chart.js to round out to its ticks: the settled
 * range when there is one, else chart.js's own from the data. For a quantity
 * that cannot be negative (a loss, a learning rate, a gradient norm, a
 * speed) they never start below 0: the settled range's margin and chart.js's
 * room around a flat line would otherwise draw negative ticks no point can
 * reach. Points below 0 all the same (it was not such a quantity) keep their
 * limits, so nothing drawn is cut off.
 */
export function yLimits(
  series: readonly ChartSeries[],
  fromData: { min: number; max: number },
  range: { min: number; max: number } | null,
  nonNegative: boolean,
): { min: number; max: number } {
  const { min, max } = range ?? fromData;
  return { min: nonNegative && min < 0 && lowestPoint(series) >= 0 ? 0 : min, max };
}
