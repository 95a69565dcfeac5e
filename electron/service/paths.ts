// Which paths a client may name. The desktop app (allowedRoots null) may use
// any path the OS user can; browser mode only paths inside its allowed roots.
// "Inside" is decided on real paths: the realpath of the path, or of its
// nearest existing parent for a path still to be created, so a symlink inside
// a root that points outside it is refused. The bundled resources (the demo)
// and the studio home (runs, recent.json) are always allowed.
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ApiError } from '../api/contract.js';
import { bundledDemoFiles } from '../demo/paths.js';
import { studioHome } from '../runs/run-index.js';
import { invalid } from './errors.js';

/** realpath of the path, or of its nearest existing parent with the rest appended. */
export function realPathOrParent(path: string): string {
  const tail: string[] = [];
  let p = path;
  for (;;) {
    try {
      return join(realpathSync.native(p), ...tail.reverse());
    } catch {
      const parent = dirname(p);
      if (parent === p) return path;
      tail.push(p.slice(parent.length).replace(/^[\\/]+/, ''));
      p = parent;
    }
  }
}

export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

/** The folder holding the bundled demo (resources/), or null when it is missing. */
function resourcesDir(): string | null {
  try {
    return dirname(bundledDemoFiles().dir);
  } catch {
    return null;
  }
}

export class PathPolicy {
  /** null: any path */
  readonly roots: string[] | null;

  constructor(allowedRoots: string[] | null) {
    this.roots = allowedRoots === null ? null : allowedRoots.map((r) => resolve(r));
  }

  /** What may be used: the allowed roots, the resources folder and the studio home (null: anything). */
  allowed(): string[] | null {
    if (this.roots === null) return null;
    const always = [resourcesDir(), studioHome()].filter((p): p is string => p !== null);
    return [...new Set([...this.roots, ...always])];
  }

  /** Whether an absolute, normalized path may be used. */
  permits(path: string): boolean {
    const allowed = this.allowed();
    if (allowed === null) return true;
    const real = realPathOrParent(path);
    return allowed.some((root) => isInside(real, realPathOrParent(root)));
  }

  /**
   * Checks a path from a request: a non-empty absolute path (normalized on
   * return) that the policy permits; `field` names it in the error.
   */
  check(value: string, field: string): string {
    if (value.trim() === '') throw invalid(field, `${field} is empty; give an absolute path`);
    if (value.includes('\0')) throw invalid(field, `${field} contains a NUL character`);
    if (!isAbsolute(value)) throw invalid(field, `${field} must be an absolute path, got '${value}'`);
    const path = resolve(value);
    if (!this.permits(path)) {
      throw new ApiError({
        code: 'forbidden',
        field,
        message: `${path} is outside the folders this server may use (${this.allowed()!.join(', ')}); choose a path inside one of them, or restart peft-studio serve with --root for that folder`,
      });
    }
    return path;
  }

  checkOptional(value: string | null | undefined, field: string): string | null {
    return value === undefined || value === null ? null : this.check(value, field);
  }
}
