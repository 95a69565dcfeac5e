// For tests: a Hugging Face hub cache laid out exactly as huggingface_hub
// writes one (blobs named by their content hash, snapshot files as relative
// symlinks to ../../blobs/<hash>, refs/main holding the commit), filled with
// real files such as the bundled demo model's.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { packageRoot } from '../engine/load.js';
import { repoFolderName } from './hf-cache.js';

/** The bundled demo model's folder. */
export function demoModelDir(): string {
  return join(packageRoot(), 'resources', 'demo', 'model');
}

/** Every file of a folder (flat), name -> content. */
export function filesOf(dir: string): Record<string, Buffer> {
  return Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
}

/** A 40-hex-digit commit hash made from a word (tests name revisions). */
export function commitOf(word: string): string {
  return createHash('sha1').update(word).digest('hex');
}

export function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export interface CachedRevision {
  repoDir: string;
  snapshot: string;
  /** file name -> its blob's path */
  blobs: Record<string, string>;
}

/**
 * Writes one revision of a repo into the cache: each file's content as
 * blobs/<sha256> and snapshots/<revision>/<file> as a relative symlink to it
 * (a file path with folders links up as many levels). `main`: also write
 * refs/main naming this revision. `folder`: the repo's folder name when it is
 * no model (datasets--org--name).
 */
export function writeCachedRevision(cache: string, repoId: string, revision: string, files: Record<string, Buffer>, main = true,
  folder = repoFolderName(repoId)): CachedRevision {
  const repoDir = join(cache, folder);
  const snapshot = join(repoDir, 'snapshots', revision);
  mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  const blobs: Record<string, string> = {};
  for (const [file, content] of Object.entries(files)) {
    const blob = join(repoDir, 'blobs', sha256(content));
    writeFileSync(blob, content);
    const link = join(snapshot, file);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), blob), link);
    blobs[file] = blob;
  }
  mkdirSync(snapshot, { recursive: true });
  if (main) {
    mkdirSync(join(repoDir, 'refs'), { recursive: true });
    writeFileSync(join(repoDir, 'refs', 'main'), revision);
  }
  return { repoDir, snapshot, blobs };
}
