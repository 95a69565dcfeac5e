// Creating folders (mkdir -p) without the two traps of `fs.mkdir(p, {recursive: true})`:
//   - Node 20 loops forever on a missing path under /proc: mkdir answers
//     ENOENT although the parent exists, and Node retries the parent, which
//     exists, then the child again, forever. Walking the path here, one
//     non-recursive mkdir per missing part, turns that into one error.
//   - Kernel file systems (/proc, /sys, /dev) hold no user files at all: a
//     path there is refused up front with one line that names who gave it.
// Every folder the app creates from a user-given path goes through makeFolder.
import { mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Kernel file systems: nothing may be written there, and Node's recursive mkdir can spin forever under /proc. */
export const KERNEL_PREFIXES = ['/proc', '/sys', '/dev'] as const;
/** Under /dev, the one place that is an ordinary (RAM) disk. */
const DEV_SHM = '/dev/shm';

/** true when `inner` is `outer` or lies under it. */
export function isWithin(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

/** The real path of a path that may not exist yet: its nearest existing ancestor resolved (symlinks followed), the rest appended. */
export async function realPathOfMaybeMissing(path: string): Promise<string> {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail);
    } catch {
      const parent = dirname(head);
      if (parent === head) return resolve(path);
      tail.unshift(head.slice(parent.length).replace(/^[\\/]/, ''));
      head = parent;
    }
  }
}

function kernelPrefixOfResolved(path: string): string | null {
  if (process.platform === 'win32') return null;
  if (isWithin(path, DEV_SHM)) return null;
  return KERNEL_PREFIXES.find((prefix) => isWithin(path, prefix)) ?? null;
}

/** The kernel file system `path` lies on (/proc, /sys, /dev), as written or through symlinks; null for an ordinary disk. */
export async function kernelFileSystemOf(path: string): Promise<string | null> {
  return kernelPrefixOfResolved(resolve(path)) ?? kernelPrefixOfResolved(await realPathOfMaybeMissing(path));
}

export class KernelFolderError extends Error {
  constructor(readonly path: string, readonly prefix: string, readonly label: string) {
    super(`${label ? `${label} ` : ''}${path}: is under ${prefix}, a kernel file system where no folder can be made or written; choose a folder on a disk (e.g. under your home folder)`);
    this.name = 'KernelFolderError';
  }
}

/** Refuses a path on a kernel file system; `label` names who gave it (a flag or an environment variable). */
export async function refuseKernelPath(path: string, label = ''): Promise<void> {
  const prefix = await kernelFileSystemOf(path);
  if (prefix !== null) throw new KernelFolderError(resolve(path), prefix, label);
}

/**
 * mkdir -p: creates `path` and its missing parents. Refuses kernel file
 * systems (KernelFolderError, naming `label`); other failures are the
 * file-system error of the part that failed (its code and path intact, so
 * callers word them as they do any other: EACCES, ENOTDIR, ENOSPC...).
 */
export async function makeFolder(path: string, label = ''): Promise<void> {
  const target = resolve(path);
  await refuseKernelPath(target, label);
  // Nearest existing ancestor, then one mkdir per missing part below it.
  const missing: string[] = [];
  let head = target;
  for (;;) {
    try {
      const info = await stat(head);
      if (!info.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${target}'`), { code: 'ENOTDIR', path: head, syscall: 'mkdir' });
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw err;
      const parent = dirname(head);
      if (parent === head) throw err; // no root: cannot happen on a real system
      missing.unshift(head);
      head = parent;
    }
  }
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (err) {
      // Made meanwhile by someone else: fine when it is a folder.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(dir).then((s) => s.isDirectory(), () => false))) continue;
      throw err;
    }
  }
}
