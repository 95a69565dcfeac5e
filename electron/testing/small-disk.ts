// A real small disk for the tests of what a full disk does: a tmpfs of a few
// KiB mounted on a fresh temp folder. Mounting needs root where mount is
// permitted (not in most CI containers); elsewhere canMountSmallDisk is false
// and the tests that need one are skipped, as those needing chattr are
// (testing/immutable-folder.ts). Tests only: nothing in the app mounts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  /** unmounts and removes the mount point (safe to call twice) */
  unmount(): void;
}

/** Mounts a tmpfs of `kib` KiB (whole 4 KiB pages) on a new temp folder. */
export function mountSmallDisk(kib: number): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'ps-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      execFileSync('umount', [dir], { stdio: 'ignore' });
      mounted = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const canMountSmallDisk: boolean = (() => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    mountSmallDisk(16).unmount();
    return true;
  } catch {
    return false;
  }
})();

/** Bytes free on the disk of `dir` as df(1) reports them: a measure independent of the app's statfs. */
export function dfAvailable(dir: string): number {
  const out = execFileSync('df', ['--output=avail', '-B1', dir], { encoding: 'utf8' });
  return Number(out.trim().split('\n').pop());
}

/** "82.0 KiB" back to bytes, with the half unit its one decimal may have rounded away. */
export function bytesFromWords(words: string): { bytes: number; within: number } {
  const m = /^(\d+(?:\.\d)?) (B|KiB|MiB|GiB)$/.exec(words);
  if (!m) throw new Error(`not a size in words: ${words}`);
  const unit = 1024 ** ['B', 'KiB', 'MiB', 'GiB'].indexOf(m[2]);
  return { bytes: Number(m[1]) * unit, within: m[2] === 'B' ? 0 : 0.05 * unit };
}
