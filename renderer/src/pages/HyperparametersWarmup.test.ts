// The warmup field of the Hyperparameters step, rendered in jsdom against the
// real studio service on the bundled demo model and its task data (111 rows:
// one epoch at batch 1 is 111 steps): given in steps or as a fraction of the
// run (train --warmup-ratio), one at a time; the fraction says the steps it
// comes to over the run the check counted; an invalid one names its range;
// the warning of a warmup as long as the run stays by the field; a run
// started with a fraction records it and the steps it came to.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { Studio } from '../state/studio.svelte.js';
import { byId, type as typeInto, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-warmup-',
  allowedRoots: null,
  load: () => import('./Hyperparameters.svelte'),
});

async function render(studio = demoLoraStudio(harness.demo)): Promise<{ root: HTMLElement; studio: Studio }> {
  const root = harness.mount({ studio });
  await until('the form', () => byId(root, 'input-warmupSteps') !== null);
  await until('the first check', () => studio.check !== null && byId(root, 'check-pending') === null);
  return { root, studio };
}

const type = (root: HTMLElement, key: string, value: string) => typeInto(root, `input-${key}`, value);
const click = (root: HTMLElement, id: string) => byId(root, id)!.click();
const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.trim() ?? null;

/** The check for what the form holds now has answered. */
async function checked(root: HTMLElement, studio: Studio, what: string, cond: () => boolean): Promise<void> {
  await until(what, () => byId(root, 'check-pending') === null && studio.check !== null && cond());
}

describe('the warmup field', () => {
  it('is given in steps or as a fraction of the run, never both; the fraction says what it comes to', async () => {
    const { root, studio } = await render();
    expect((byId(root, 'warmup-mode-steps') as HTMLInputElement).checked).toBe(true);
    expect(byId(root, 'input-warmupRatio')).toBeNull();
    // one field in the advanced settings, not two
    expect(root.querySelectorAll('[data-testid="field-warmupSteps"]')).toHaveLength(1);
    expect(byId(root, 'field-warmupRatio')).toBeNull();

    type(root, 'warmupSteps', '5');
    await checked(root, studio, 'the check for 5 warmup steps', () => studio.check!.config?.warmupSteps === 5);
    click(root, 'warmup-mode-fraction');
    await until('the fraction\'s input, focused', () => document.activeElement === byId(root, 'input-warmupRatio'));
    expect(byId(root, 'input-warmupSteps')).toBeNull();
    // the steps went back to their default: the run would refuse both
    expect(studio.hyper).toEqual({});
    expect(text(root, 'warmup-ratio-steps')).toBe('Enter the fraction of the run to warm up over.');

    type(root, 'warmupRatio', '0.03');
    await checked(root, studio, 'the check for 0.03', () => studio.check!.config?.warmupRatio === 0.03);
    expect(studio.hyper).toEqual({ warmupRatio: 0.03 });
    // one epoch over 111 rows at batch 1: 111 steps; ceil(111 x 0.03 = 3.33) = 4
    expect(studio.check!.time?.steps).toBe(111);
    expect(text(root, 'warmup-ratio-steps')).toBe('3% of 111 steps = 4 steps');
    expect(studio.check!.ok).toBe(true);

    // a larger batch: fewer steps, and the count follows the check's
    type(root, 'batchSize', '4');
    await checked(root, studio, 'the check for batch 4', () => studio.check!.config?.batchSize === 4);
    expect(text(root, 'warmup-ratio-steps')).toBe('3% of 28 steps = 1 step'); // ceil(111 / 4) = 28; ceil(0.84) = 1

    // back to steps: the fraction goes
    click(root, 'warmup-mode-steps');
    await until('the steps\' input, focused', () => document.activeElement === byId(root, 'input-warmupSteps'));
    expect(byId(root, 'input-warmupRatio')).toBeNull();
    expect(studio.hyper).toEqual({ batchSize: 4 });
  });

  it('a fraction outside 0 up to 1 is refused by the field, naming the range', async () => {
    const { root, studio } = await render();
    click(root, 'warmup-mode-fraction');
    await until('the fraction\'s input', () => byId(root, 'input-warmupRatio') !== null);
    expect(byId(root, 'field-warmupSteps')!.textContent).toContain('Warmup fraction: 0 up to but not including 1.');
    type(root, 'warmupRatio', '3');
    expect(text(root, 'error-warmupRatio')).toBe('Must be less than 1.');
    expect(byId(root, 'input-warmupRatio')!.getAttribute('aria-invalid')).toBe('true');
    expect(byId(root, 'check-waiting')).not.toBeNull();
    type(root, 'warmupRatio', '3%');
    expect(text(root, 'error-warmupRatio')).toBe('Enter a number, e.g. 0.0002 or 2e-4.');
    type(root, 'warmupRatio', '0.1');
    await checked(root, studio, 'the check for 0.1', () => studio.check!.config?.warmupRatio === 0.1);
    expect(byId(root, 'error-warmupRatio')!.hidden).toBe(true);
  });

  it('a fraction that comes to the whole run: the warning by the field and near Start, whose link goes to the fraction', async () => {
    const { root, studio } = await render();
    type(root, 'steps', '1');
    click(root, 'warmup-mode-fraction');
    await until('the fraction\'s input', () => byId(root, 'input-warmupRatio') !== null);
    type(root, 'warmupRatio', '0.5');
    await checked(root, studio, 'the check for 0.5 of 1 step', () => studio.check!.config?.warmupRatio === 0.5 && studio.check!.config?.steps === 1);
    // written out here, as the app words it (not derived from the code that words it)
    const expected = "Warmup steps: 50% of the run's 1 step comes to 1 step (rounded up), as many as the run has: the learning rate rises for the whole run " +
      'and never reaches the Learning rate (0.0002); use a smaller fraction, or more Steps';
    expect(text(root, 'warning-warmupSteps')).toBe(`${expected}.`);
    expect(byId(root, 'input-warmupRatio')!.getAttribute('aria-describedby')).toContain('hyper-warmupRatio-warning');
    expect(text(root, 'warmup-ratio-steps')).toBe('50% of 1 step = 1 step');
    click(root, 'warning-goto-warmupSteps');
    await until('the focus in the fraction', () => document.activeElement === byId(root, 'input-warmupRatio'));
    expect((byId(root, 'hyper-advanced') as HTMLDetailsElement).open).toBe(true);
    expect((byId(root, 'start-training') as HTMLButtonElement).disabled).toBe(false);
  });

  it('a run started with a fraction records it and the steps it came to, and warms up over them', async () => {
    const { root, studio } = await render();
    type(root, 'steps', '2');
    click(root, 'warmup-mode-fraction');
    await until('the fraction\'s input', () => byId(root, 'input-warmupRatio') !== null);
    type(root, 'warmupRatio', '0.4');
    await checked(root, studio, 'the check for 0.4 of 2 steps', () => studio.check!.config?.warmupRatio === 0.4 && studio.check!.config?.steps === 2);
    await until('Start enabled', () => !(byId(root, 'start-training') as HTMLButtonElement).disabled);
    click(root, 'start-training');
    await until('the run started', () => studio.runDir !== null);
    const file = join(studio.runDir!, 'run.json');
    // the record is read, not an event listened to: it says how the run ended whichever way the page heard it
    // (written atomically, so a read sees one version whole; absent until the run has checked its settings)
    const runJson = () => (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null);
    await until('the run finished', () => runJson()?.status === 'finished');
    const record = runJson();
    // ceil(2 x 0.4 = 0.8) = 1 warmup step of 2
    expect([record.config.warmupRatio, record.config.warmupSteps]).toEqual([0.4, 1]);
    const lrs = readFileSync(join(studio.runDir!, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => m.lr);
    // linear warmup over 1 step, then linear decay over the other: 0, then the full rate (transformers' lambdas)
    expect(lrs).toEqual([0, 2e-4]);
  });
});
