// A Git LFS pointer: what a clone without `git lfs` leaves in place of a
// large file (a few lines of text, under 1 KiB). Read as data it would be a
// confusing bad row; it is refused saying what to run.
import { DataError } from '../../training/data.js';

const LFS_POINTER = 'version https://git-lfs.github.com/spec/v1';
const MAX_POINTER_BYTES = 1024;

/** Refuses a file of `size` bytes whose first bytes (`start`) are a Git LFS pointer's. */
export function refuseLfsPointer(start: Uint8Array, size: number, file: string): void {
  if (size < MAX_POINTER_BYTES && Buffer.from(start.buffer, start.byteOffset, Math.min(start.byteLength, LFS_POINTER.length)).toString('latin1') === LFS_POINTER) {
    throw new DataError(`${file}: is a Git LFS pointer, not the data (the repository was cloned without Git LFS); run \`git lfs pull\` in it, or download the file itself`);
  }
}
