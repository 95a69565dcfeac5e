// Which paths a client may name. The desktop app (allowedRoots null) may use
// any path the OS user can; browser mode only paths inside its allowed roots.
// "Inside" is decided on real paths: the realpath of the path, or of its
// nearest existing parent for a path still to be created, so a symlink inside
// a root that points outside it is refused; a dangling symlink is followed to
// where it points, as the OS would follow it when the path is created.
// Reading is also allowed in the bundled demo (resources/demo) and the studio
// home (runs, recent.json); writing (run and export folders) only in the
// roots and the studio home: the installed package is never written to.
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ApiError } from '../api/contract.js';
import { bundledDemoFiles } from '../demo/paths.js';
import { studioHome } from '../runs/run-index.js';
import { invalid } from './errors.js';

export type Access = 'read' | 'write';

/** As the kernel: this many links in one path lookup is a loop (Linux's MAXSYMLINKS). */
const MAX_LINK_HOPS = 40;

export class SymlinkLoopError extends Error {
  constructor(path: string) {
    super(`${path}: too many levels of symbolic links`);
    this.name = 'SymlinkLoopError';
  }
}

/** The link's target when `path` is a symbolic link (dangling or not), else null. */
function linkTarget(path: string): string | null {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
  } catch {
    return null;
  }
}

/**
 * realpath of the path, or of its nearest existing parent with the rest
 * appended. A component that is a dangling symlink is replaced by its target
 * (resolved against the link's real folder) and the walk starts again, so the
 * answer is where a later mkdir or open would really land. Throws
 * SymlinkLoopError for a link cycle.
 */
export function realPathOrParent(path: string, hops = 0): string {
  const tail: string[] = [];
  let p = path;
  for (;;) {
    try {
      return join(realpathSync.native(p), ...tail.reverse());
    } catch {
      const target = linkTarget(p);
      if (target !== null) {
        if (hops >= MAX_LINK_HOPS) throw new SymlinkLoopError(path);
        // the link's own folder exists (lstat found the link in it)
        const followed = resolve(realpathSync.native(dirname(p)), target);
        return realPathOrParent(join(followed, ...tail.reverse()), hops + 1);
      }
      const parent = dirname(p);
      if (parent === p) return path;
      tail.push(p.slice(parent.length).replace(/^[\\/]+/, ''));
      p = parent;
    }
  }
}

export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

/** The bundled demo folder (resources/demo), or null when it is missing. */
function demoDir(): string | null {
  try {
    return bundledDemoFiles().dir;
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

  /** Where `access` is allowed: the roots and the studio home, plus the demo for reading (null: anywhere). */
  allowed(access: Access = 'read'): string[] | null {
    if (this.roots === null) return null;
    const always = [access === 'read' ? demoDir() : null, studioHome()].filter((p): p is string => p !== null);
    return [...new Set([...this.roots, ...always])];
  }

  /** Whether an absolute, normalized path may be used for `access`. */
  permits(path: string, access: Access = 'read'): boolean {
    const allowed = this.allowed(access);
    if (allowed === null) return true;
    try {
      const real = realPathOrParent(path);
      return allowed.some((root) => isInside(real, realPathOrParent(root)));
    } catch {
      return false; // a link loop leads nowhere that could be allowed
    }
  }

  /**
   * Checks a path from a request: a non-empty absolute path (normalized on
   * return) that the policy permits for `access`; `field` names it in the error.
   */
  check(value: string, field: string, access: Access = 'read'): string {
    if (value.trim() === '') throw invalid(field, `${field} is empty; give an absolute path`);
    if (value.includes('\0')) throw invalid(field, `${field} contains a NUL character`);
    if (!isAbsolute(value)) throw invalid(field, `${field} must be an absolute path, got '${value}'`);
    const path = resolve(value);
    if (!this.permits(path, access)) {
      const readOnly = access === 'write' && this.permits(path, 'read');
      throw new ApiError({
        code: 'forbidden',
        field,
        message: readOnly
          ? `${path} is inside the bundled demo, which is read-only (it cannot be written); choose a folder inside ${this.allowed('write')!.join(', ')}`
          : `${path} is outside the folders this server may ${access === 'write' ? 'write to' : 'use'} (${this.allowed(access)!.join(', ')}); choose a path inside one of them, or restart peft-studio serve with --root for that folder`,
      });
    }
    return path;
  }

  checkOptional(value: string | null | undefined, field: string, access: Access = 'read'): string | null {
    return value === undefined || value === null ? null : this.check(value, field, access);
  }
}
