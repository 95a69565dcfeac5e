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
