// Path helpers for the in-page file browser. Paths come from the server
// (POSIX or Windows), so the separator is read from the path itself.
import type { DirEntry } from '../../../electron/api/contract.js';

export interface Crumb {
  name: string;
  path: string;
}

/** "/home/me/models" -> "/", "home", "me", "models" with the path of each; "C:\\a" -> "C:\\", "a". */
export function crumbs(path: string): Crumb[] {
  const windows = /^[A-Za-z]:[\\/]/.test(path) || (path.includes('\\') && !path.includes('/'));
  const sep = windows ? '\\' : '/';
  const parts = path.split(/[\\/]+/).filter((p) => p !== '');
  const out: Crumb[] = [];
  let acc: string;
  if (windows) {
    const drive = parts.shift() ?? '';
    acc = drive + sep;
    out.push({ name: acc, path: acc });
  } else {
    acc = '/';
    out.push({ name: '/', path: '/' });
  }
  for (const part of parts) {
    acc = acc.endsWith(sep) ? acc + part : acc + sep + part;
    out.push({ name: part, path: acc });
  }
  return out;
}

/** The folder holding `path` (for starting a browser next to a chosen file); null for a root. */
export function parentOf(path: string): string | null {
  const c = crumbs(path);
  return c.length > 1 ? c[c.length - 2].path : null;
}

/** Folders first, then files; each by name, case-insensitively, numbers in order. */
export function sortEntries(entries: readonly DirEntry[]): DirEntry[] {
  return [...entries].sort((a, b) =>
    a.kind !== b.kind ? (a.kind === 'folder' ? -1 : 1) : a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }),
  );
}

/** Whether `path` is `folder` or inside it (either separator; "/a/bc" is not inside "/a/b"). */
export function isAtOrBelow(path: string, folder: string): boolean {
  const f = folder.replace(/[\\/]+$/, '');
  if (path === folder || path.replace(/[\\/]+$/, '') === f) return true;
  return f === '' ? path.startsWith('/') : path.startsWith(f + '/') || path.startsWith(f + '\\');
}
