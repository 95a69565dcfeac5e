// A folder's entries for the renderer's own file browser (browser mode has
// no native dialog): folders first, then files, each sorted by name; hidden
// entries skipped; a folder holding config.json and *.safetensors is marked
// as a model folder.
import { readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DirEntry, ListDirResponse } from '../api/contract.js';
import { failed } from './errors.js';
import type { PathPolicy } from './paths.js';

export async function isModelFolder(dir: string): Promise<boolean> {
  try {
    const names = await readdir(dir);
    return names.includes('config.json') && names.some((n) => n.endsWith('.safetensors'));
  } catch {
    return false;
  }
}

/** Where browsing starts: the first allowed root (browser mode) or the home folder (desktop). */
export function startFolder(policy: PathPolicy): string {
  return policy.roots?.[0] ?? homedir();
}

export async function listDir(path: string | null, policy: PathPolicy): Promise<ListDirResponse> {
  const dir = path === null ? startFolder(policy) : policy.check(path, 'path');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is a file, not a folder' : code === 'EACCES' || code === 'EPERM' ? 'cannot be read (permission denied)' : `cannot be read (${code ?? String(e)})`;
    throw failed(`${dir} ${why}`);
  }
  const entries: DirEntry[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const full = join(dir, name);
    let info;
    try {
      info = await stat(full);
    } catch {
      continue; // a dangling link or an entry that vanished meanwhile
    }
    if (info.isDirectory()) {
      // a link out of the allowed roots is not offered (it would be refused when opened)
      if (!policy.permits(full)) continue;
      entries.push({ name, path: full, kind: 'folder', bytes: 0, isModel: await isModelFolder(full) });
    } else if (info.isFile()) {
      if (!policy.permits(full)) continue;
      entries.push({ name, path: full, kind: 'file', bytes: info.size });
    }
  }
  const rank = (e: DirEntry) => (e.kind === 'folder' ? 0 : 1);
  entries.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  const up = dirname(dir);
  const parent = up === dir || !policy.permits(up) || policy.roots?.some((r) => r === dir) ? null : up;
  return { path: dir, parent, entries };
}
