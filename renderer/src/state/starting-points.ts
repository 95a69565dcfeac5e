// What the Model and Data pages offer before the user types a path: the
// bundled demo and the recently used models and datasets. Either call may
// fail on its own (the banner says why); the page shows what did arrive.
import type { DemoPaths, RecentItems } from '../../../electron/api/contract.js';
import { api } from '../api/index.js';
import type { Studio } from './studio.svelte.js';

export async function loadStartingPoints(studio: Studio): Promise<{ demo: DemoPaths | null; recent: RecentItems | null }> {
  const [demo, recent] = await Promise.allSettled([api.call('demoPaths', {}), api.call('recent', {})]);
  if (demo.status === 'rejected') studio.showError(demo.reason);
  if (recent.status === 'rejected') studio.showError(recent.reason);
  return { demo: demo.status === 'fulfilled' ? demo.value : null, recent: recent.status === 'fulfilled' ? recent.value : null };
}
