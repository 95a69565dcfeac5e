// How much a write needs and how much its disk has free, for the message
// when it did not fit: "the disk is full" alone does not say how much to free.
import { bytesInWords } from '../text/bytes.js';
import { lstat, readdir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** What a write needs: exactly (one file's known size), about (a plan of a folder's files), or at least (what was written when it failed). */
export interface SpaceNeed {
  bytes: number;
  bound: 'exact' | 'about' | 'at least';
}

/** A write that ran out of space: what it needed (when known) and what its disk has free now (null: unknown). */
export interface DiskShortfall {
  need: SpaceNeed | null;
  free: number | null;
}

/** Bytes free to this user on the disk of `path` (its nearest existing folder); null where statfs cannot tell. */
export async function freeBytes(path: string): Promise<number | null> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(p) === p) return null;
    }
  }
}

/** Bytes of the files under `path` (a file, or a folder walked whole); 0 when it is gone. */
export async function bytesUnder(path: string): Promise<number> {
  let info;
  try {
    info = await lstat(path);
  } catch {
    return 0;
  }
  if (!info.isDirectory()) return info.isFile() ? info.size : 0;
  let total = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await bytesUnder(join(path, name));
  return total;
}


/**
 * "the folder needs about 248.3 KiB, and 60.0 KiB is free there", or the half
 * that is known (null: neither). A lower bound no larger than what is free
 * (the rest of a file of unknown size was never tried) says only that it is more.
 */
export function shortfallInWords(s: DiskShortfall, what: string): string | null {
  const free = s.free === null ? null : bytesInWords(s.free);
  if (s.need !== null && s.need.bound === 'at least' && s.free !== null && s.need.bytes <= s.free) return `${what} needs more than the ${free} free there`;
  const need = s.need === null ? null : `${what} needs ${s.need.bound === 'exact' ? '' : `${s.need.bound} `}${bytesInWords(s.need.bytes)}`;
  if (need !== null && free !== null) return `${need}, and ${free} is free there`;
  return need ?? (free === null ? null : `${free} is free there`);
}

/** How much more must be freed for the write to fit (null: unknown, or the figures do not show it). */
export function bytesToFree(s: DiskShortfall): number | null {
  if (s.need === null || s.free === null || s.need.bytes <= s.free) return null;
  return s.need.bytes - s.free;
}
