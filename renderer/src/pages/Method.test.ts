// The Method step rendered in jsdom from what the service answered for the
// bundled demo model (components/testdata/demo-overview.json, captured from
// `inspectModel`): the method cards as one WAI-ARIA radio group (each radio
// named by its method, one Tab stop, the arrow keys choose), and no
// "recommended" mark on a method that does not fit.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';

import type { ModelOverview, TrainMethod } from '../../../electron/api/contract.js';
import { recommendMethod } from '../../../electron/service/recommend.js';
import { SettingsError, trainConfigFromSettings } from '../../../electron/training/settings.js';
import captured from '../components/testdata/demo-overview.json';
import { Studio } from '../state/studio.svelte.js';
import Method from './Method.svelte';

const demo = captured as unknown as ModelOverview;
let component: ReturnType<typeof mount> | null = null;

afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

function render(overview: ModelOverview, method: TrainMethod | null = overview.recommended): { root: HTMLElement; studio: Studio } {
  const studio = new Studio();
  studio.model = '/models/demo';
  studio.overview = overview;
  studio.method = method;
  const root = document.createElement('div');
  document.body.append(root);
  component = mount(Method, { target: root, props: { studio } });
  flushSync();
  return { root, studio };
}

/** The accessible name of a button named by its content: its text without the parts hidden from assistive technology. */
function accessibleName(el: Element): string {
  const copy = el.cloneNode(true) as Element;
  for (const hidden of copy.querySelectorAll('[aria-hidden="true"]')) hidden.remove();
  return copy.textContent!.replace(/\s+/g, ' ').trim();
}

const radios = (root: HTMLElement) => [...root.querySelectorAll<HTMLElement>('[role="radiogroup"] [role="radio"]')];

function press(el: HTMLElement, key: string): void {
  el.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true }));
  flushSync();
}

describe('the method cards as a radio group', () => {
  it('names each radio by its method, checked or not', () => {
    const { root } = render(demo, 'lora');
    expect(radios(root).map(accessibleName)).toEqual(['LoRA', 'QLoRA', 'Prompt tuning', 'Prefix tuning', 'Full fine-tuning']);
    expect(radios(root).map((r) => r.getAttribute('aria-checked'))).toEqual(['true', 'false', 'false', 'false', 'false']);
    // what the eye reads around the name
    expect(root.querySelector('[data-testid="method-choose-lora"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe('✓ Chosen: LoRA');
    expect(root.querySelector('[data-testid="method-choose-qlora"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe('Use QLoRA');
  });

  it('is one Tab stop: the chosen method, or the first when none is chosen', () => {
    const { root, studio } = render(demo, 'prompt');
    expect(radios(root).map((r) => r.tabIndex)).toEqual([-1, -1, 0, -1, -1]);
    studio.method = null;
    flushSync();
    expect(radios(root).map((r) => r.tabIndex)).toEqual([0, -1, -1, -1, -1]);
  });

  it('moves the choice with the arrow keys, wrapping round, and the focus with it', () => {
    const { root, studio } = render(demo, 'lora');
    const lora = root.querySelector<HTMLElement>('[data-testid="method-choose-lora"]')!;
    lora.focus();
    press(lora, 'ArrowDown');
    expect(studio.method).toBe('qlora');
    expect(document.activeElement).toBe(root.querySelector('[data-testid="method-choose-qlora"]'));
    press(document.activeElement as HTMLElement, 'ArrowRight');
    expect(studio.method).toBe('prompt');
    press(document.activeElement as HTMLElement, 'ArrowUp');
    press(document.activeElement as HTMLElement, 'ArrowLeft');
    expect(studio.method).toBe('lora');
    // before the first: the last
    press(document.activeElement as HTMLElement, 'ArrowUp');
    expect(studio.method).toBe('full');
    expect(document.activeElement).toBe(root.querySelector('[data-testid="method-choose-full"]'));
    expect(radios(root).map((r) => r.tabIndex)).toEqual([-1, -1, -1, -1, 0]);
    // after the last: the first
    press(document.activeElement as HTMLElement, 'ArrowDown');
    expect(studio.method).toBe('lora');
    // other keys are left alone
    press(document.activeElement as HTMLElement, 'Home');
    expect(studio.method).toBe('lora');
  });

  it('arrowing through the methods and back keeps the settings of the method returned to', () => {
    const { root, studio } = render(demo, 'lora');
    studio.hyper = { lr: 1e-3, rank: 64 };
    const lora = root.querySelector<HTMLElement>('[data-testid="method-choose-lora"]')!;
    lora.focus();
    press(lora, 'ArrowDown'); // QLoRA
    press(document.activeElement as HTMLElement, 'ArrowDown'); // Prompt tuning
    expect(studio.method).toBe('prompt');
    expect(studio.hyper).toEqual({ lr: 1e-3 });
    press(document.activeElement as HTMLElement, 'ArrowUp');
    press(document.activeElement as HTMLElement, 'ArrowUp');
    expect(studio.method).toBe('lora');
    expect(studio.hyper).toEqual({ lr: 1e-3, rank: 64 });
  });

  it('skips a method that cannot train this model', () => {
    // a 4-bit folder: full fine-tuning and LoRA are not available, so they have no radio
    const fourBit = structuredClone(demo);
    for (const m of fourBit.methods) if (m.method === 'full' || m.method === 'lora') m.unavailable = 'this folder holds 4-bit weights';
    const { root, studio } = render(fourBit, 'qlora');
    expect(radios(root).map(accessibleName)).toEqual(['QLoRA', 'Prompt tuning', 'Prefix tuning']);
    press(root.querySelector<HTMLElement>('[data-testid="method-choose-qlora"]')!, 'ArrowUp');
    expect(studio.method).toBe('prefix');
  });
});

describe('the recommendation', () => {
  it('marks the pick that fits', () => {
    const { root } = render(demo);
    expect(root.querySelector('[data-testid="method-recommendation"] .badge')!.textContent).toBe('recommended: LoRA');
    expect(root.querySelector('[data-testid="method-card-lora"]')!.textContent).toContain('recommended');
  });

  it('marks no method "recommended" when none fits', () => {
    // 1 MiB available: every estimate is over it; the service still names prompt tuning, the smallest
    const small = structuredClone(demo);
    small.machine.availableMemoryBytes = 2 ** 20;
    for (const row of Object.values(small.report.memory)) row.fits = row.total_bytes <= small.machine.availableMemoryBytes;
    const pick = recommendMethod(small.report, small.machine.availableMemoryBytes);
    expect(pick.recommended).toBe('prompt');
    const { root } = render({ ...small, methods: pick.methods, recommended: pick.recommended, recommendation: pick.recommendation });
    expect(root.querySelector('[data-testid="method-recommendation"] .badge')!.textContent).toBe('nothing fits');
    for (const card of root.querySelectorAll('[data-testid^="method-card-"]')) expect(card.textContent).not.toContain('recommended');
  });
});

describe('the speed beside the memory', () => {
  it('says the estimated tokens/s per method on the CPU, and nothing made up where none is measured', () => {
    const speeds: Record<TrainMethod, number | null> = { lora: 1234.4, qlora: 987, prompt: 1500, prefix: 1400, full: 640 };
    const overview: ModelOverview = { ...demo, methods: demo.methods.map((m) => ({ ...m, tokensPerSecond: speeds[m.method] })) };
    const { root } = render(overview, 'lora');
    const speed = (m: TrainMethod) => root.querySelector(`[data-testid="method-speed-${m}"]`)!.textContent!.replace(/\s+/g, ' ').trim();
    expect(speed('lora')).toBe('about 1,234 tokens/s on this CPU');
    expect(speed('full')).toBe('about 640 tokens/s on this CPU');
    unmount(component!);
    component = null;
    document.body.innerHTML = '';
    const onGpu: ModelOverview = { ...demo, methods: demo.methods.map((m) => ({ ...m, tokensPerSecond: null })) };
    const again = render(onGpu, 'lora').root;
    for (const m of ['lora', 'qlora', 'prompt', 'prefix', 'full'] as const)
      expect(again.querySelector(`[data-testid="method-speed-${m}"]`)!.textContent!.trim()).toBe('known once the first steps run');
  });
});

describe('packing chosen on the Data page', () => {
  /** Whether the run's own resolver refuses packing for the method (training/settings.ts), asked with the form's other defaults. */
  function runRefusesPacking(method: TrainMethod): boolean {
    try {
      trainConfigFromSettings({ model: '/m', data: '/d.jsonl', out: '/o', method, pack: true });
      return false;
    } catch (e) {
      if (e instanceof SettingsError && e.field === 'pack') return true;
      throw e;
    }
  }

  it('warns on the card of each method the run refuses it for, and says where to change it', () => {
    const { root, studio } = render(demo);
    expect(root.querySelectorAll('[data-testid^="method-pack-"]')).toHaveLength(0);
    studio.pack = true;
    flushSync();
    const warned = demo.methods.map((m) => m.method).filter((m) => root.querySelector(`[data-testid="method-pack-${m}"]`) !== null);
    expect(warned).toEqual(demo.methods.map((m) => m.method).filter(runRefusesPacking));
    expect(warned).toEqual(['prompt']);
    expect(root.querySelector('[data-testid="method-pack-prompt"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe(
      'Cannot pack rows: it prepends its virtual tokens to each sequence, so every document needs its own row. "Pack short rows" is ticked on the Data page: untick it there to train with Prompt tuning.');
    // unticked again on the Data page: no warning
    studio.pack = false;
    flushSync();
    expect(root.querySelectorAll('[data-testid^="method-pack-"]')).toHaveLength(0);
  });
});
