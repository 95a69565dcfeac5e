// The theme's text colours against the backgrounds they are drawn on, in the
// light and the dark variant of app.css: every pair the app uses for text
// (the badges, like the header's "browser mode" pill; muted notes; a
// primary button's label) reaches WCAG 2's 4.5:1 for normal-size text. The
// ratio is computed here from the sRGB definition, not taken from a tool.
// @vitest-environment node
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { RUN_COLORS } from './components/charts/series.js';

const css = readFileSync(new URL('./app.css', import.meta.url), 'utf8');

/** The custom properties of the first `:root { ... }` block after `from`. */
function variables(from: number): Map<string, string> {
  const start = css.indexOf(':root {', from);
  const block = css.slice(start, css.indexOf('}', start));
  return new Map([...block.matchAll(/--([\w-]+):\s*(#[0-9a-f]{6});/gi)].map((m) => [m[1], m[2].toLowerCase()]));
}

const light = variables(0);
const dark = new Map([...light, ...variables(css.indexOf('@media (prefers-color-scheme: dark)'))]);

function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** [text, background] as app.css and the components pair them. */
const PAIRS: [string, string][] = [
  ['accent', 'accent-soft'], // .badge.accent: "browser mode", "recommended"; the current step in the sidebar
  ['ok', 'ok-soft'],
  ['bad', 'bad-soft'],
  ['warn', 'warn-soft'],
  ['accent-text', 'accent'], // button.primary
  ['accent', 'surface'], // links, the recommended row's name
  ['muted', 'surface'],
  ['muted', 'bg'],
  ['text', 'bg'],
  ['text', 'surface'],
  ['bad', 'surface'], // inline errors
];

describe('theme contrast', () => {
  it('reads the colours from app.css', () => {
    expect(light.get('accent')).toMatch(/^#[0-9a-f]{6}$/);
    expect(dark.get('accent')).not.toBe(light.get('accent'));
    // the formula on known values: black on white is 21:1, a colour on itself 1:1
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 10);
    expect(contrast('#2f6fb3', '#2f6fb3')).toBe(1);
  });

  for (const [scheme, vars] of [['light', light], ['dark', dark]] as const) {
    it.each(PAIRS)(`${scheme}: --%s on --%s is at least 4.5:1`, (text, background) => {
      const ratio = contrast(vars.get(text)!, vars.get(background)!);
      expect(ratio, `${vars.get(text)} on ${vars.get(background)}`).toBeGreaterThanOrEqual(4.5);
    });
  }
});

// The compared runs' lines are graphics, not text: WCAG 1.4.11 asks 3:1 against what they are drawn on (a card).
describe('run colours on the charts', () => {
  for (const [scheme, vars] of [['light', light], ['dark', dark]] as const) {
    it.each([...RUN_COLORS])(`${scheme}: %s on --surface is at least 3:1`, (color) => {
      expect(contrast(color, vars.get('surface')!)).toBeGreaterThanOrEqual(3);
    });
  }
  it('are distinct', () => {
    expect(new Set(RUN_COLORS.map((c) => c.toLowerCase())).size).toBe(RUN_COLORS.length);
  });
});
