// The export's --out folder: checked before any work (so a folder the export
// cannot write or must not replace fails in a second, not after the source is
// scored), and the file-system errors of writing it reworded to name it (the
// export is written in a temp folder beside it and moved into place).
import { access, constants, readdir, stat } from 'node:fs/promises';
import { basename, dirname, resolve, sep } from 'node:path';
import { FileWriteError, FolderExistsError } from '../files/atomic.js';
import { bytesToFree, shortfallInWords, type DiskShortfall } from '../files/disk-space.js';
import { bytesInWords } from '../text/bytes.js';
import { refuseKernelPath } from '../files/make-folder.js';
import { refuseOutputOverInputs, type NamedInput } from '../files/output-overlap.js';
import { intendedPath } from '../files/temp-names.js';
import { clearWriteLeftovers, describeCleanup } from '../files/write-leftovers.js';
import { ExportError } from './export-error.js';

async function isNonEmptyFolder(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

/** What a file-system error code means for the export folder, and what to do about it (a full disk: how much, when known). */
function targetProblem(code: string, out: string, space: DiskShortfall | null = null): string {
  const parent = dirname(out);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code}). The export is written beside it in ${parent} and then moved into place, so that folder must be writable by you: fix its permissions, or choose another --out folder`;
    case 'ENOSPC':
    case 'EDQUOT': {
      const room = space === null ? null : shortfallInWords(space, 'the export');
      const toFree = space === null ? null : bytesToFree(space);
      return `${code === 'EDQUOT' ? 'the disk quota is used up' : 'the disk is full'} (${code})${room === null ? '' : `: ${room}`}. ` +
        `Free ${toFree === null ? 'some space' : `at least ${bytesInWords(toFree)}`}, or choose an --out folder on another disk`;
    }
    case 'EROFS':
      return `the file system is read-only (${code}). Choose an --out folder on a writable disk`;
    case 'ENAMETOOLONG':
      return `the folder name is too long for the file system (${code}). Choose a shorter --out folder name`;
    case 'ENOTDIR':
      return `a part of the path is a file, not a folder (${code}). Choose another --out folder`;
    default:
      return `the file system refused (${code}). Check that ${parent} is writable and the disk is not full, or choose another --out folder`;
  }
}

/**
 * The --out folder checked before any work (the source's loss takes a while):
 * not on a kernel file system, not a file, not the source or the base model
 * (nor inside or around them: writing replaces the whole folder), empty
 * unless overwrite, and its nearest existing folder writable. Resolves with
 * what it cleaned of a killed export's leftovers, in a line (null: nothing).
 */
export async function checkExportDestination(out: string, inputs: readonly NamedInput[], options: { overwrite?: boolean; howToOverwrite?: string }): Promise<string | null> {
  await refuseKernelPath(out, '--out');
  await refuseOutputOverInputs(out, inputs, 'the export');
  // A killed export into the same --out: its temp folders go, and the old --out it had moved aside comes back
  // when --out is missing (files/write-leftovers.ts), so that it is judged below as the folder the user had.
  const cleanup = await clearWriteLeftovers(dirname(out), basename(out));
  const cleaned = describeCleanup(cleanup);
  let head = out;
  for (;;) {
    let info;
    try {
      info = await stat(head);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ExportError(`${out}: cannot write the export folder: ${targetProblem(code ?? 'EIO', out)}.`);
      const parent = dirname(head);
      if (parent === head) break;
      head = parent;
      continue;
    }
    if (!info.isDirectory()) {
      throw new ExportError(head === out
        ? `--out ${out}: is a file, not a folder; choose a folder path for the export`
        : `--out ${out}: ${head} is a file, so no folder can be made below it; choose another --out folder`);
    }
    break;
  }
  if (head === out && !options.overwrite && (await isNonEmptyFolder(out))) {
    const refusal = new FolderExistsError(out, options.howToOverwrite);
    if (cleanup.restored.length > 0) refusal.message = `${cleaned}. ${refusal.message}`;
    throw refusal;
  }
  // The export is made beside --out and moved into place: that folder (or its nearest existing ancestor) must be writable.
  const writable = head === out ? dirname(out) : head;
  try {
    await access(writable, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    throw new ExportError(`${out}: cannot write the export folder: ${targetProblem(code, out)}.`);
  }
  return cleaned;
}

/**
 * An error writing the export's folder, reworded to name the --out folder:
 * the raw error may name a temp folder beside it (.NAME.PID.HEX.tmp, or a
 * temp of one) the user never chose, which intendedPath maps back. Errors
 * about other paths (reading the base model) pass as they are (null).
 */
export function targetFolderError(err: unknown, out: string): ExportError | null {
  const e = err as (NodeJS.ErrnoException & { dest?: string }) | null;
  let path: string | undefined;
  let code: string | undefined;
  let space: DiskShortfall | null = null;
  if (err instanceof FileWriteError) {
    path = err.file;
    code = err.code ?? 'EIO';
    space = err.space;
  } else if (e && typeof e.code === 'string') {
    path = e.path;
    code = e.code;
  }
  if (path === undefined || code === undefined) return null;
  if (resolve(path) === out && e?.dest !== undefined && (code === 'EPERM' || code === 'EACCES')) {
    // Moving the old --out aside failed although its parent took the new folder: the folder itself is protected.
    return new ExportError(`${out}: cannot replace the existing folder (${code}): the folder itself cannot be moved or removed. ` +
      `It is marked immutable (chattr +i; lsattr -d shows it), or it belongs to another user inside a shared folder such as /tmp. ` +
      `Remove the flag (chattr -i ${out}), or choose another --out folder.`);
  }
  // --out, a path inside it, or a folder above it (making --out's parents), once its temp names are mapped back
  const ours = (p: string) => {
    const q = resolve(intendedPath(p));
    return q === out || q.startsWith(out + sep) || out.startsWith(q.endsWith(sep) ? q : q + sep);
  };
  if (!ours(path) && !(e?.dest !== undefined && ours(e.dest))) return null;
  return new ExportError(`${out}: cannot write the export folder: ${targetProblem(code, out, space)}.`);
}
