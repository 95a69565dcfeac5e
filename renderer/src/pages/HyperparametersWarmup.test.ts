// The warmup field of the Hyperparameters step, rendered in jsdom against the
// real studio service on the bundled demo model and its task data (111 rows:
// one epoch at batch 1 is 111 steps): given in steps or as a fraction of the
// run (train --warmup-ratio), one at a time; the fraction says the steps it
// comes to over the run the check counted; an invalid one names its range;
// the warning of a warmup as long as the run stays by the field; a run
// started with a fraction records it and the steps it came to. Also what
// the form does around it: an invalid text never stays in a field the form
// no longer shows (Start would wait on nothing highlighted), and a reset
// link hands the focus to its field as it goes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { Studio } from '../state/studio.svelte.js';
import { byId, choose, type as typeInto, until } from '../testing/dom-waits.js';
import { demoLoraStudio, pageHarness } from '../testing/page-harness.js';

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-hyper-warmup-',
  allowedRoots: null,
  load: () => import('./Hyperparameters.svelte'),
});

async function render(studio = demoLoraStudio(harness.demo)): Promise<{ root: HTMLElement; studio: Studio }> {
  const root = harness.mount({ studio });
  // the field, whichever way the settings give the warmup
  await until('the form', () => byId(root, 'field-warmupSteps') !== null);
  await until('the first check', () => studio.check !== null && byId(root, 'check-pending') === null);
  return { root, studio };
}

const type = (root: HTMLElement, key: string, value: string) => typeInto(root, `input-${key}`, value);
const click = (root: HTMLElement, id: string) => byId(root, id)!.click();
const text = (root: HTMLElement, id: string) => byId(root, id)?.textContent?.trim() ?? null;
const startDisabled = (root: HTMLElement) => (byId(root, 'start-training') as HTMLButtonElement).disabled;

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
    // another field invalid: no check runs until it is fixed, and the line says so (not "once the check has read the data")
    type(root, 'batchSize', '0');
    await until('the batch size refused', () => text(root, 'error-batchSize') !== '');
    expect(text(root, 'warmup-ratio-steps')).toBe('The steps it comes to are counted once the highlighted fields are fixed.');
    type(root, 'batchSize', '4');
    await until('the count back', () => text(root, 'warmup-ratio-steps') === '3% of 28 steps = 1 step');

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
    // a percentage is what recipes print: the hint says the number meant, not the learning rate's examples
    type(root, 'warmupRatio', '3%');
    expect(text(root, 'error-warmupRatio')).toBe('Enter the fraction as a number: type 0.03 for 3%.');
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

  it('an invalid steps text goes with the steps when the fraction is chosen: nothing hidden holds Start back', async () => {
    const { root, studio } = await render();
    type(root, 'warmupSteps', '-3');
    expect(text(root, 'error-warmupSteps')).toBe('Must be at least 0.');
    expect(byId(root, 'check-waiting')).not.toBeNull();
    click(root, 'warmup-mode-fraction');
    await until('the fraction\'s input', () => byId(root, 'input-warmupRatio') !== null);
    // the steps' input left the form, and its text with it: nothing to fix, nowhere
    expect(byId(root, 'input-warmupSteps')).toBeNull();
    expect(byId(root, 'check-waiting')).toBeNull();
    expect(byId(root, 'hyper-advanced')!.querySelector('summary')!.textContent).not.toContain('to fix');
    expect(studio.hyper).toEqual({});

    type(root, 'warmupRatio', '0.05');
    await checked(root, studio, 'the check for 0.05', () => studio.check!.config?.warmupRatio === 0.05);
    expect(studio.hyper).toEqual({ warmupRatio: 0.05 });
    // ceil(111 x 0.05 = 5.55) = 6
    expect(text(root, 'warmup-ratio-steps')).toBe('5% of 111 steps = 6 steps');
    expect(startDisabled(root)).toBe(false);

    // back to steps: their default, valid
    click(root, 'warmup-mode-steps');
    await until('the steps\' input', () => byId(root, 'input-warmupSteps') !== null);
    expect((byId(root, 'input-warmupSteps') as HTMLInputElement).value).toBe('0');
    expect(byId(root, 'error-warmupSteps')!.hidden).toBe(true);
    expect(studio.hyper).toEqual({});
  });

  it('any field the form stops showing drops its invalid text for the value the settings hold (early stopping turned off)', async () => {
    const { root, studio } = await render();
    type(root, 'evalSplit', '0.2');
    type(root, 'evalEvery', '2');
    type(root, 'earlyStop', '3');
    type(root, 'earlyStop', '3x');
    expect(text(root, 'error-earlyStop')).toBe('Enter a whole number.');
    expect(studio.hyper).toEqual({ evalSplit: 0.2, evalEvery: 2, earlyStop: 3 });

    // evaluating at the end only: early stopping is shown off, a fact with no input to fix the text in
    type(root, 'evalEvery', '0');
    expect(byId(root, 'input-earlyStop')).toBeNull();
    expect(byId(root, 'eval-off-earlyStop')).not.toBeNull();
    expect(byId(root, 'error-earlyStop')!.hidden).toBe(true);
    expect(byId(root, 'check-waiting')).toBeNull();
    await checked(root, studio, 'the check without evaluations during the run', () => studio.check!.config?.evalSplit === 0.2 && studio.check!.config?.evalEvery === 0);
    expect(startDisabled(root)).toBe(false);

    // evaluating during the run again: the field reads the patience the settings kept, not the text that went
    type(root, 'evalEvery', '2');
    expect((byId(root, 'input-earlyStop') as HTMLInputElement).value).toBe('3');
    expect(byId(root, 'error-earlyStop')!.hidden).toBe(true);
  });
});

describe('a reset link', () => {
  /** Reaches the link as a keyboard user does, presses it: the link goes, the focus lands on `target`. */
  async function resetFrom(root: HTMLElement, key: string, target: string): Promise<void> {
    await until(`${key}'s reset link`, () => byId(root, `reset-${key}`) !== null);
    const link = byId(root, `reset-${key}`) as HTMLButtonElement;
    link.focus();
    link.click();
    await until(`the focus on ${target} after resetting ${key}`, () => document.activeElement === byId(root, target));
    expect(byId(root, `reset-${key}`)).toBeNull();
  }

  it('hands the focus to its field as it goes: a text box, a checkbox, a choice, a setting shown off, the fraction', async () => {
    const studio = demoLoraStudio(harness.demo);
    // the warmup given as a fraction by the settings, as after another page and back
    studio.hyper = { warmupRatio: 0.1 };
    const { root } = await render(studio);
    expect((byId(root, 'warmup-mode-fraction') as HTMLInputElement).checked).toBe(true);

    type(root, 'lr', '0.001');
    await resetFrom(root, 'lr', 'input-lr');
    expect((byId(root, 'input-lr') as HTMLInputElement).value).toBe('0.0002');

    click(root, 'input-dora');
    await resetFrom(root, 'dora', 'input-dora');
    expect((byId(root, 'input-dora') as HTMLInputElement).checked).toBe(false);

    choose(root, 'input-scheduler', 'cosine');
    await resetFrom(root, 'scheduler', 'input-scheduler');
    expect((byId(root, 'input-scheduler') as HTMLSelectElement).value).toBe('linear');

    // keep-best set, then evaluating at the end only: shown off, its reset link still there, the focus on what it shows
    type(root, 'evalSplit', '0.2');
    type(root, 'evalEvery', '2');
    click(root, 'input-keepBest');
    type(root, 'evalEvery', '0');
    await resetFrom(root, 'keepBest', 'eval-off-keepBest');

    // the fraction emptied by its link stays the fraction's input (the way the warmup is given is the user's), empty
    await resetFrom(root, 'warmupRatio', 'input-warmupRatio');
    expect((byId(root, 'input-warmupRatio') as HTMLInputElement).value).toBe('');
    expect((byId(root, 'warmup-mode-fraction') as HTMLInputElement).checked).toBe(true);
    expect(studio.hyper).toEqual({ evalSplit: 0.2 });
  });
});
