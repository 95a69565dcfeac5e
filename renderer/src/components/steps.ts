// The wizard's steps as the user reads them: their names (the sidebar, the
// window title) and, for a step that cannot be opened yet, what to do first.
import type { Page, Studio } from '../state/studio.svelte.js';

export const PAGE_LABELS: Record<Page, string> = {
  model: 'Model',
  method: 'Method',
  data: 'Data',
  hyperparameters: 'Hyperparameters',
  train: 'Train',
  export: 'Export & try',
  runs: 'Runs',
};

/** The window title for a page: the step first, so a list of windows or tabs tells them apart. */
export function pageTitle(page: Page): string {
  return `${PAGE_LABELS[page]} · PEFT Studio`;
}

type Choices = Pick<Studio, 'overview' | 'method' | 'dataReport' | 'runDir' | 'reachable'>;

/**
 * Why a step cannot be opened yet, as the next thing to do ("Choose a model
 * first."); null when it can. Follows Studio.reachable: the first choice
 * still missing on the way to the step is the one named.
 */
export function whyUnreachable(studio: Choices, page: Page): string | null {
  if (studio.reachable(page)) return null;
  if (studio.overview === null) return 'Choose a model first.';
  if (page === 'data') return 'Choose a method first.';
  if (page === 'export') return 'Train a model first, or open a run from Runs.';
  if (studio.method === null) return 'Choose a method first.';
  return 'Choose a dataset first.';
}
