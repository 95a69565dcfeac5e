// LineChart wraps chart.js: one chart per mounted component, redrawn in
// place (same instance, no animation) when points arrive, destroyed on unmount.
import { Chart } from 'chart.js';
import { flushSync, mount, unmount } from 'svelte';
import { describe, expect, it } from 'vitest';

import LineChart from './LineChart.svelte';
import type { ChartSeries } from './series.js';

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
    const target = document.createElement('div');
    document.body.append(target);
    // a loss that starts at 12, drops to ~2 within 10 steps and then drifts from 2.0 to 1.5 over 190 steps
    const points = Array.from({ length: 200 }, (_, i) => ({ x: i + 1, y: i < 10 ? 12 - i : 2 - (0.5 * (i - 10)) / 189 }));
    const props = $state<{ series: ChartSeries[]; title: string; yLabel: string; testid: string; settle: boolean }>({
      series: [{ label: 'training loss', color: '#000', points }],
      title: 'Loss',
      yLabel: 'loss',
      testid: 'loss-chart',
      settle: true,
    });
    const component = mount(LineChart, { target, props });
    flushSync();
    const chart = Chart.getChart(target.querySelector('canvas')!)!;
    // after the first 20 points (a tenth), the loss spans 1.5 .. 2: that, with a 5% margin, is the axis
    const lo = 1.5;
    const hi = 2 - (0.5 * 10) / 189;
    expect(chart.options.scales!.y!.min).toBeCloseTo(lo - 0.05 * (hi - lo), 10);
    expect(chart.options.scales!.y!.max).toBeCloseTo(hi + 0.05 * (hi - lo), 10);
    expect(chart.data.datasets[0].data).toHaveLength(200); // every point is still drawn
    const toggle = target.querySelector<HTMLButtonElement>('[data-testid="loss-chart-range"]')!;
    expect(toggle.textContent!.trim()).toBe('Show the first steps');

    toggle.click();
    flushSync();
    expect(chart.options.scales!.y!.min).toBeUndefined();
    expect(chart.options.scales!.y!.max).toBeUndefined();
    expect(toggle.getAttribute('aria-pressed')).toBe('true');

    // a short run, or one whose start does not squeeze the rest: the whole range, no button
    props.series = [{ label: 'training loss', color: '#000', points: points.slice(0, 15) }];
    flushSync();
    expect(target.querySelector('[data-testid="loss-chart-range"]')).toBeNull();
    expect(chart.options.scales!.y!.max).toBeUndefined();
    unmount(component);
    target.remove();
  });
});

