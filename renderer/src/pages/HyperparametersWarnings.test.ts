// The Hyperparameters step's warnings, rendered in jsdom against the real
// studio service (electron/service, behind the preload bridge the desktop
// app has) on the bundled demo model and its task data (111 rows: one epoch
// at batch 1 is 111 steps): a setting the run would accept but that looks
// like a slip shows by its field and in a summary near Start, in the form's
// words, as soon as the check for the value on screen answers; fixed, it
// goes away. Start stays enabled throughout.
import { describe, expect, it } from 'vitest';

import { Studio } from '../state/studio.svelte.js';
import { byId, type as typeInto, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-warnings-',
  allowedRoots: null,
  load: () => import('./Hyperparameters.svelte'),
});

async function render(): Promise<{ root: HTMLElement; studio: Studio }> {
  const studio = demoLoraStudio(harness.demo);
  const root = harness.mount({ studio });
  await until('the form', () => byId(root, 'input-warmupSteps') !== null);
  await until('the first check', () => studio.check !== null && byId(root, 'check-pending') === null);
  return { root, studio };
}

/** The form's fields have test ids input-<key>. */
const type = (root: HTMLElement, key: string, value: string) => typeInto(root, `input-${key}`, value);

/** The check for what the form holds now has answered. */
async function checked(root: HTMLElement, studio: Studio, what: string, cond: () => boolean): Promise<void> {
  await until(what, () => byId(root, 'check-pending') === null && studio.check !== null && cond());
}

/** The ids the input's aria-describedby names, and the text of each. */
function description(root: HTMLElement, key: string): { ids: string[]; text: string } {
  const ids = (byId(root, `input-${key}`)!.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
  return { ids, text: ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ') };
}

const start = (root: HTMLElement) => byId(root, 'start-training') as HTMLButtonElement;

describe('warnings on the Hyperparameters page', () => {
  it('a warmup longer than the run: the warning by the field and near Start, gone once fixed; Start stays enabled', async () => {
    const { root, studio } = await render();
    expect(byId(root, 'warning-warmupSteps')).toBeNull();
    expect(byId(root, 'check-warnings')).toBeNull();
    expect(description(root, 'warmupSteps').ids).toEqual(['hyper-warmupSteps-help', 'hyper-warmupSteps-error']);

    // more warmup steps than the 111 of one epoch over the demo's rows
    type(root, 'warmupSteps', '200');
    await checked(root, studio, 'the check for warmup 200', () => studio.check!.config?.warmupSteps === 200);
    const expected = "Warmup steps 200 is not below the run's 111 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use fewer warmup steps";
    expect(byId(root, 'warning-warmupSteps')!.textContent).toBe(`${expected}.`);
    // the other field that sets the run's length says it too
    expect(byId(root, 'warning-epochs')!.textContent).toBe(`${expected}.`);
    expect(description(root, 'warmupSteps')).toEqual({
      ids: ['hyper-warmupSteps-help', 'hyper-warmupSteps-error', 'hyper-warmupSteps-warning'],
      text: expect.stringContaining(expected),
    });
    // the field's warning is no live region of its own (one announcement: the summary's, in the verdict card)
    expect(byId(root, 'warning-warmupSteps')!.closest('[aria-live], [role="alert"], [role="status"]')).toBeNull();
    const summary = byId(root, 'check-warnings')!;
    expect(summary.closest('[aria-live="polite"]')).not.toBeNull();
    expect([...summary.querySelectorAll('li')].map((li) => li.textContent!.trim())).toEqual([`${expected}. Go to Warmup steps`]);
    expect(summary.textContent).toContain('A setting looks like a slip (training can still start)');
    expect(byId(root, 'advanced-warnings')!.textContent).toBe('1 to look at');
    expect(studio.check!.ok).toBe(true);
    expect(start(root).disabled).toBe(false);

    // "Go to" opens the advanced settings and puts the focus in the field
    expect((byId(root, 'hyper-advanced') as HTMLDetailsElement).open).toBe(false);
    byId(root, 'warning-goto-warmupSteps')!.click();
    await until('the focus in the field', () => document.activeElement === byId(root, 'input-warmupSteps'));
    expect((byId(root, 'hyper-advanced') as HTMLDetailsElement).open).toBe(true);

    // fixed: gone from the field, its description and the summary
    type(root, 'warmupSteps', '100');
    await checked(root, studio, 'the check for warmup 100', () => studio.check!.config?.warmupSteps === 100);
    expect(byId(root, 'warning-warmupSteps')).toBeNull();
    expect(byId(root, 'warning-epochs')).toBeNull();
    expect(byId(root, 'check-warnings')).toBeNull();
    expect(byId(root, 'advanced-warnings')).toBeNull();
    expect(description(root, 'warmupSteps').ids).toEqual(['hyper-warmupSteps-help', 'hyper-warmupSteps-error']);
    expect(start(root).disabled).toBe(false);

    // another field that shortens the run below the warmup brings it back, by both fields
    type(root, 'steps', '50');
    await checked(root, studio, 'the check for 50 steps', () => studio.check!.config?.steps === 50);
    expect(byId(root, 'warning-warmupSteps')!.textContent).toContain("Warmup steps 100 is not below the run's 50 steps");
    expect(byId(root, 'warning-steps')!.textContent).toMatch(/use fewer warmup steps, or more Steps\.$/);
    expect(byId(root, 'warning-epochs')).toBeNull();
    expect(start(root).disabled).toBe(false);
  }, 60_000);

  it('no warnings while a field is invalid: they were for values no longer on screen', async () => {
    const { root, studio } = await render();
    type(root, 'rank', '100');
    await checked(root, studio, 'the check for rank 100', () => studio.check!.config?.lora?.rank === 100);
    // the demo's v_proj is 64 x 192: a rank above 64 cannot be used
    expect(byId(root, 'warning-rank')!.textContent).toContain('LoRA rank 100 is larger than the smallest dimension of the adapted layers (v_proj is 64 x 192)');
    expect(byId(root, 'warning-targets')).not.toBeNull();
    type(root, 'batchSize', '0');
    expect(byId(root, 'warning-rank')).toBeNull();
    expect(byId(root, 'check-warnings')).toBeNull();
  }, 60_000);
});
