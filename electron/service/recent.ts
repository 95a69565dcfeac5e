// Recently used models and datasets, newest first, at most 10 of each,
// remembered in <studio home>/recent.json (written atomically). Recorded
// when a model or dataset was inspected successfully, so only paths that
// worked are offered again.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecentItems } from '../api/contract.js';
import { writeFileAtomic } from '../files/atomic.js';
import { ensureStudioHome, studioHome } from '../runs/run-index.js';

export const RECENT_FILE = 'recent.json';
export const MAX_RECENT = 10;

export function recentFile(): string {
  return join(studioHome(), RECENT_FILE);
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, MAX_RECENT) : []);

export async function readRecent(): Promise<RecentItems> {
  try {
    const json = JSON.parse(await readFile(recentFile(), 'utf8')) as Partial<Record<keyof RecentItems, unknown>>;
    return { models: strings(json?.models), datasets: strings(json?.datasets) };
  } catch {
    return { models: [], datasets: [] }; // none yet, or damaged: start again
  }
}

/** Serializes the read-modify-write of recent.json within this process. */
let queue: Promise<unknown> = Promise.resolve();

export function rememberRecent(kind: keyof RecentItems, path: string): Promise<void> {
  const next = queue.then(async () => {
    const items = await readRecent();
    items[kind] = [path, ...items[kind].filter((p) => p !== path)].slice(0, MAX_RECENT);
    await ensureStudioHome();
    await writeFileAtomic(recentFile(), JSON.stringify(items, null, 2) + '\n');
  });
  queue = next.catch(() => {});
  return next;
}
