// The token cache's folder as a set of entries: what it holds, and keeping it
// under its size bound by removing the least recently used entries (a hit
// touches its entry's mtime, token-cache.ts). Entries of another cache
// version can never be hit again and go first; so do temp files of writes
// that were killed (writeFileAtomic's `.NAME.PID.RANDOM.tmp`) once they are
// an hour old (a younger one may be a write in progress in another process).
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Entry names: v{version}-{sha256 key}.tokens */
const ENTRY = /^v(\d+)-[0-9a-f]{64}\.tokens$/;
const LEFTOVER = /^\.v\d+-[0-9a-f]{64}\.tokens\..*\.tmp$/;
const LEFTOVER_AGE_MS = 60 * 60 * 1000;

export function entryName(version: number, key: string): string {
  return `v${version}-${key}.tokens`;
}

export interface CacheEntryFile {
  name: string;
  bytes: number;
  /** last write or hit (the file's mtime) */
  usedMs: number;
}

export interface CacheContents {
  /** this version's entries */
  entries: CacheEntryFile[];
  /** files nothing will read again: other versions' entries, old temp files */
  stale: CacheEntryFile[];
}

/** What the folder holds (an absent or unreadable folder holds nothing). */
export async function cacheContents(dir: string, version: number): Promise<CacheContents> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { entries: [], stale: [] };
  }
  const contents: CacheContents = { entries: [], stale: [] };
  const now = Date.now();
  for (const name of names) {
    const match = ENTRY.exec(name);
    if (!match && !LEFTOVER.test(name)) continue;
    let info;
    try {
      info = await stat(join(dir, name));
    } catch {
      continue; // removed meanwhile (another process evicting)
    }
    if (!info.isFile()) continue;
    const file = { name, bytes: info.size, usedMs: info.mtimeMs };
    if (match && Number(match[1]) === version) contents.entries.push(file);
    else if (match || now - info.mtimeMs > LEFTOVER_AGE_MS) contents.stale.push(file);
  }
  return contents;
}

/** Removes a file of the cache; false when it could not be (already gone counts as removed). */
export async function removeCacheFile(dir: string, name: string): Promise<boolean> {
  try {
    await unlink(join(dir, name));
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Removes stale files, then the least recently used entries until the rest
 * hold at most maxBytes. Returns the entries kept, most recently used last.
 */
export async function evictToBound(dir: string, contents: CacheContents, maxBytes: number): Promise<CacheEntryFile[]> {
  for (const file of contents.stale) await removeCacheFile(dir, file.name);
  const kept = [...contents.entries].sort((a, b) => a.usedMs - b.usedMs);
  let total = kept.reduce((n, e) => n + e.bytes, 0);
  while (total > maxBytes && kept.length > 0) {
    const oldest = kept.shift()!;
    await removeCacheFile(dir, oldest.name);
    total -= oldest.bytes;
  }
  return kept;
}

/** Removes every entry and stale file: what was removed, and how many files could not be. */
export async function clearCache(dir: string, version: number): Promise<{ files: number; bytes: number; failed: number }> {
  const { entries, stale } = await cacheContents(dir, version);
  const cleared = { files: 0, bytes: 0, failed: 0 };
  for (const file of [...entries, ...stale]) {
    if (await removeCacheFile(dir, file.name)) {
      cleared.files++;
      cleared.bytes += file.bytes;
    } else cleared.failed++;
  }
  return cleared;
}
