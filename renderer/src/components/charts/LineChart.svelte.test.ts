// LineChart wraps chart.js: one chart per mounted component, redrawn in
// place (same instance, no animation) when points arrive, destroyed on unmount.
import { Chart } from 'chart.js';
import { flushSync, mount, unmount } from 'svelte';
import { describe, expect, it } from 'vitest';

import LineChart from './LineChart.svelte';
import type { ChartSeries } from './series.js';

/** jsdom has no layout: give a mounted chart the size a page gives it, so chart.js lays out its axes */
function laidOut(target: HTMLElement): Chart {
  const chart = Chart.getChart(target.querySelector('canvas')!)!;
  chart.resize(600, 240);
  return chart;
}

/** the y axis's tick values, checked to be evenly spaced at a round step (1, 2 or 5 × 10^k) and each a multiple of it */
/** A settled Loss chart of `points`, mounted in a new element: its element, its reactive props and the component. */
function mountSettledLoss(points: { x: number; y: number }[]) {
  const target = document.createElement('div');
  document.body.append(target);
  const props = $state<{ series: ChartSeries[]; title: string; yLabel: string; testid: string; settle: boolean }>({
    series: [{ label: 'training loss', color: '#000', points }],
    title: 'Loss',
    yLabel: 'loss',
    testid: 'loss-chart',
    settle: true,
  });
  const component = mount(LineChart, { target, props });
  flushSync();
  return { target, props, component };
}

function roundTicks(chart: Chart): { ticks: number[]; step: number } {
  const ticks = chart.scales.y.ticks.map((t) => t.value);
  expect(ticks.length).toBeGreaterThanOrEqual(3);
  const step = ticks[1] - ticks[0];
  const mantissa = step / 10 ** Math.floor(Math.log10(step));
  expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9)).toBe(true);
  ticks.forEach((t, i) => {
    expect(t).toBeCloseTo(ticks[0] + i * step, 9);
    expect(Math.abs(t / step - Math.round(t / step))).toBeLessThan(1e-9);
  });
  // the axis ends on its outer ticks
  expect(chart.scales.y.min).toBe(ticks[0]);
  expect(chart.scales.y.max).toBe(ticks[ticks.length - 1]);
  return { ticks, step };
}

describe('LineChart', () => {
  it('draws the series, updates the same chart in place, and is destroyed on unmount', () => {
    const target = document.createElement('div');
    document.body.append(target);
    const props = $state<{ series: ChartSeries[]; title: string; yLabel: string; testid: string }>({
      series: [
        { label: 'training loss', color: '#000', points: [{ x: 1, y: 3 }, { x: 2, y: 2.5 }] },
        { label: 'eval loss', color: '#f00', dots: true, points: [] },
      ],
      title: 'Loss',
      yLabel: 'loss',
      testid: 'loss-chart',
    });
    const component = mount(LineChart, { target, props });
    flushSync();

    const figure = target.querySelector('[data-testid="loss-chart"]')!;
    const canvas = target.querySelector('canvas')!;
    const chart = Chart.getChart(canvas)!;
    expect(chart).toBeDefined();
    expect(chart.options.animation).toBe(false);
    expect(chart.data.datasets.map((d) => d.label)).toEqual(['training loss', 'eval loss']);
    expect(chart.data.datasets[0].data).toEqual([{ x: 1, y: 3 }, { x: 2, y: 2.5 }]);
    expect(figure.getAttribute('data-points')).toBe('2');

    props.series = [
      { ...props.series[0], points: [...props.series[0].points, { x: 3, y: 2.25 }] },
      { ...props.series[1], points: [{ x: 3, y: 2.4 }] },
    ];
    flushSync();
    expect(Chart.getChart(canvas)).toBe(chart);
    expect(chart.data.datasets[0].data).toEqual([{ x: 1, y: 3 }, { x: 2, y: 2.5 }, { x: 3, y: 2.25 }]);
    expect(chart.data.datasets[1].data).toEqual([{ x: 3, y: 2.4 }]);
    expect(figure.getAttribute('data-points')).toBe('4');
    expect(target.querySelector('figcaption')!.textContent).toBe('Loss: training loss: 2.25 at step 3; eval loss: 2.4 at step 3');

    expect(chart.options.plugins?.legend?.display).toBe(true);

    // a series can go (and its legend with it)
    props.series = [props.series[0]];
    flushSync();
    expect(Chart.getChart(canvas)).toBe(chart);
    expect(chart.data.datasets.map((d) => d.label)).toEqual(['training loss']);
    expect(chart.options.plugins?.legend?.display).toBe(false);

    unmount(component);
    expect(Chart.getChart(canvas)).toBeUndefined();
    target.remove();
  });

  it('with settle, a long run\'s first steps do not flatten the rest; a button shows them again', () => {
    // a loss that starts at 12, drops to ~2 within 10 steps and then drifts from 2.0 to 1.5 over 190 steps
    const points = Array.from({ length: 200 }, (_, i) => ({ x: i + 1, y: i < 10 ? 12 - i : 2 - (0.5 * (i - 10)) / 189 }));
    const { target, props, component } = mountSettledLoss(points);
    const chart = laidOut(target);
    // after the first 20 points (a tenth), the loss spans 1.5 .. 2: that, with a 5% margin, rounded out to round ticks, is the axis
    const lo = 1.5;
    const hi = 2 - (0.5 * 10) / 189;
    let axis = roundTicks(chart);
    expect(axis.ticks[0]).toBeLessThanOrEqual(lo - 0.05 * (hi - lo));
    expect(axis.ticks[0]).toBeGreaterThan(lo - 0.05 * (hi - lo) - axis.step);
    expect(axis.ticks.at(-1)!).toBeGreaterThanOrEqual(hi + 0.05 * (hi - lo));
    expect(axis.ticks.at(-1)!).toBeLessThan(hi + 0.05 * (hi - lo) + axis.step);
    expect(chart.data.datasets[0].data).toHaveLength(200); // every point is still drawn
    const toggle = target.querySelector<HTMLButtonElement>('[data-testid="loss-chart-range"]')!;
    expect(toggle.textContent!.trim()).toBe('Show the first steps');

    toggle.click();
    flushSync();
    // every step: the axis reaches the start's 12
    axis = roundTicks(chart);
    expect(axis.ticks.at(-1)!).toBeGreaterThanOrEqual(12);
    expect(toggle.getAttribute('aria-pressed')).toBe('true');

    // a short run, or one whose start does not squeeze the rest: the whole range, no button
    props.series = [{ label: 'training loss', color: '#000', points: points.slice(0, 15) }];
    flushSync();
    expect(target.querySelector('[data-testid="loss-chart-range"]')).toBeNull();
    expect(roundTicks(chart).ticks.at(-1)!).toBeGreaterThanOrEqual(12);
    unmount(component);
    target.remove();
  });

  it('a loss that nears 0: round ticks from 0, none below it, in the settled view and with every step', () => {
    // the reviewer's run: 12 at the start, then 2.3 decaying towards 0 (the settled range's 5% margin reaches below 0)
    const points = Array.from({ length: 100 }, (_, i) => ({ x: i + 1, y: i < 10 ? 12 - i : 2.3 * Math.exp(-(i - 10) / 15) }));
    const { target, props, component } = mountSettledLoss(points);
    const chart = laidOut(target);
    let axis = roundTicks(chart);
    expect(axis.ticks[0]).toBe(0);
    // the settled points after the first tenth (step 11 on) are all within the axis; the start is not
    const settledMax = Math.max(...points.slice(10).map((p) => p.y));
    expect(axis.ticks.at(-1)!).toBeGreaterThanOrEqual(settledMax);
    expect(axis.ticks.at(-1)!).toBeLessThan(12);

    target.querySelector<HTMLButtonElement>('[data-testid="loss-chart-range"]')!.click();
    flushSync();
    axis = roundTicks(chart);
    expect(axis.ticks[0]).toBe(0);
    expect(axis.ticks.at(-1)!).toBeGreaterThanOrEqual(12);

    // a flat learning rate of 0 (chart.js would pad it to -1 .. 1): from 0
    props.series = [{ label: 'learning rate', color: '#000', points: [{ x: 1, y: 0 }, { x: 2, y: 0 }] }];
    flushSync();
    expect(roundTicks(chart).ticks[0]).toBe(0);

    // a chart that says its quantity can be negative keeps chart.js's room below a flat 0
    unmount(component);
    const signed = mount(LineChart, { target, props: { ...props, nonNegative: false } });
    flushSync();
    expect(roundTicks(laidOut(target)).ticks[0]).toBeLessThan(0);
    unmount(signed);
    target.remove();
  });

  it('without points it says so instead of drawing an empty grid, and draws once the first arrives', () => {
    const target = document.createElement('div');
    document.body.append(target);
    const props = $state<{ series: ChartSeries[]; title: string; yLabel: string; testid: string; empty?: string }>({
      series: [{ label: 'training loss', color: '#000', points: [] }],
      title: 'Loss',
      yLabel: 'loss',
      testid: 'loss-chart',
    });
    const component = mount(LineChart, { target, props });
    flushSync();
    const box = target.querySelector('canvas')!.parentElement!;
    expect(box.hidden).toBe(true);
    expect(target.querySelector('[data-testid="loss-chart-empty"]')!.textContent).toBe('No steps logged.');
    props.empty = 'No steps logged yet.';
    flushSync();
    expect(target.querySelector('[data-testid="loss-chart-empty"]')!.textContent).toBe('No steps logged yet.');

    props.series = [{ label: 'training loss', color: '#000', points: [{ x: 1, y: 2 }] }];
    flushSync();
    expect(box.hidden).toBe(false);
    expect(target.querySelector('[data-testid="loss-chart-empty"]')).toBeNull();
    expect(Chart.getChart(target.querySelector('canvas')!)!.data.datasets[0].data).toEqual([{ x: 1, y: 2 }]);
    unmount(component);
    target.remove();
  });
});
