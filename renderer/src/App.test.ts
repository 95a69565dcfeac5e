// The app's shell rendered in jsdom against the real studio service (in this
// process, behind the preload bridge): after a change of step the focus is
// on the new page's heading and the window title names the step; a step
// that cannot be opened yet stays reachable by keyboard and says why.
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';

import type { ModelOverview } from '../../electron/api/contract.js';
import captured from './components/testdata/demo-overview.json';
import { Studio } from './state/studio.svelte.js';
import { pageHarness } from './testing/page-harness.js';

const harness = pageHarness<{ studio?: Studio }>({
  homePrefix: 'peft-studio-app-',
  allowedRoots: null,
  load: () => import('./App.svelte'),
});

function render(): { root: HTMLElement; studio: Studio } {
  const studio = new Studio();
  const root = harness.mount({ studio });
  flushSync();
  return { root, studio };
}

const byId = (root: HTMLElement, id: string) => root.querySelector<HTMLElement>(`[data-testid="${id}"]`);

describe('moving between steps', () => {
  it('puts the focus on the new page\'s heading and names the step in the window title', () => {
    const { root, studio } = render();
    // the first page: the title names it, the focus stays where a page load leaves it
    expect(document.title).toBe('Model · PEFT Studio');
    expect(document.activeElement).toBe(document.body);

    studio.overview = captured as unknown as ModelOverview;
    studio.model = '/models/demo';
    studio.method = 'lora';
    flushSync();
    byId(root, 'nav-method')!.click();
    flushSync();
    expect(byId(root, 'page-method')).not.toBeNull();
    const heading = byId(root, 'page-method')!.querySelector('h2')!;
    expect(document.activeElement).toBe(heading);
    expect(heading.tabIndex).toBe(-1); // focusable by script, not a Tab stop
    expect(document.title).toBe('Method · PEFT Studio');

    // a page's "Next" button: the same
    byId(root, 'method-next')!.click();
    flushSync();
    expect(document.activeElement).toBe(byId(root, 'page-data')!.querySelector('h2'));
    expect(document.title).toBe('Data · PEFT Studio');
    byId(root, 'nav-runs')!.click();
    flushSync();
    expect(document.activeElement?.textContent).toBe('Runs');
    expect(document.title).toBe('Runs · PEFT Studio');
  });
});

describe('the steps in the sidebar', () => {
  it('says why a step cannot be opened yet, and stays focusable', () => {
    const { root, studio } = render();
    const method = byId(root, 'nav-method') as HTMLButtonElement;
    expect(method.disabled).toBe(false); // reachable by Tab
    expect(method.getAttribute('aria-disabled')).toBe('true');
    const why = (step: string) => {
      const button = byId(root, `nav-${step}`)!;
      const id = button.getAttribute('aria-describedby');
      return id === null ? null : document.getElementById(id)!.textContent;
    };
    expect(why('model')).toBeNull();
    expect(why('method')).toBe('Choose a model first.');
    expect(why('export')).toBe('Choose a model first.');
    // clicking it does nothing
    method.click();
    flushSync();
    expect(studio.page).toBe('model');
    expect(byId(root, 'page-model')).not.toBeNull();

    // a model chosen (its recommended method with it): the next missing choice is named
    studio.overview = captured as unknown as ModelOverview;
    studio.model = '/models/demo';
    studio.method = 'lora';
    flushSync();
    expect(why('method')).toBeNull();
    expect(method.hasAttribute('aria-disabled')).toBe(false);
    expect(why('data')).toBeNull();
    expect(why('hyperparameters')).toBe('Choose a dataset first.');
    expect(why('train')).toBe('Choose a dataset first.');
    expect(why('export')).toBe('Train a model first, or open a run from Runs.');
    studio.method = null;
    flushSync();
    expect(why('data')).toBe('Choose a method first.');
    expect(byId(root, 'nav-data')!.getAttribute('title')).toBe('Data: Choose a method first.');
  });
});
