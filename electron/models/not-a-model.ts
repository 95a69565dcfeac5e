// What a folder without config.json is, when it is something a user would
// plausibly pass as a model by mistake: a training run or adapter folder
// (run.json / adapter_config.json), or a Hugging Face cache folder
// (models--org--name, whose files live in snapshots/<hash>). "config.json does
// not exist: download the whole model folder" would send them the wrong way.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { chooseSnapshot } from './hf-cache.js';

async function readJsonObject(file: string): Promise<Record<string, unknown> | null> {
  try {
    const v: unknown = JSON.parse(await readFile(file, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function subfolders(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** The base model a run or adapter folder names: run.json's config.model, else adapter_config.json's base_model_name_or_path. */
async function baseModelOf(dir: string): Promise<string | null> {
  const run = await readJsonObject(join(dir, 'run.json'));
  const fromRun = (run?.config as { model?: unknown } | undefined)?.model;
  if (typeof fromRun === 'string' && fromRun !== '') return fromRun;
  const adapter = await readJsonObject(join(dir, 'adapter_config.json'));
  const fromAdapter = adapter?.base_model_name_or_path;
  return typeof fromAdapter === 'string' && fromAdapter !== '' ? fromAdapter : null;
}

/** "snapshots/a1b2 (the only one)" / "snapshots/a1b2 (snapshots there: a1b2, c3d4)" */
function snapshotAdvice(snapshots: string, hashes: string[]): string {
  if (hashes.length === 0) return `its ${snapshots} folder is empty: the download did not finish; download the model again`;
  const first = join(snapshots, hashes[0]);
  return hashes.length === 1
    ? `the model files are in ${first}: pick that folder`
    : `the model files are in one of its snapshots (${hashes.join(', ')}): pick ${join(snapshots, '<hash>')}, e.g. ${first}`;
}

/** The snapshot refs/main names, when it is there (the app's folder field does not resolve cache folders; the CLI does). */
async function mainSnapshot(repoDir: string): Promise<string | null> {
  try {
    const choice = await chooseSnapshot(repoDir);
    return choice.how === 'refs/main' ? choice.snapshot : null;
  } catch {
    return null; // ambiguous or broken: the listing below says what is there
  }
}

/**
 * Why `dir` (which has no config.json) is not a model folder and what to pass
 * instead, or null when it is none of the known look-alikes.
 */
export async function notAModelFolder(dir: string): Promise<string | null> {
  const hasAdapter = await exists(join(dir, 'adapter_config.json'));
  const hasRun = await exists(join(dir, 'run.json'));
  if (hasAdapter || hasRun) {
    const what = hasRun ? 'a training run folder (run.json)' : 'an adapter folder (adapter_config.json)';
    const base = await baseModelOf(dir);
    const from = hasRun ? 'run.json' : 'adapter_config.json';
    const baseAdvice = base
      ? `and its base model as --model ${base} (from ${from})`
      : 'and its base model folder as --model';
    return `${dir}: is ${what}, not a model. Pass it as --adapter ${dir} (eval, generate, merge; train: --init-adapter) ${baseAdvice}`;
  }
  const name = basename(dir);
  if (/^models--.+--.+$/.test(name) || (await exists(join(dir, 'snapshots')) && (await exists(join(dir, 'refs')) || (await exists(join(dir, 'blobs')))))) {
    const snapshots = join(dir, 'snapshots');
    const main = await mainSnapshot(dir);
    if (main) return `${dir}: is a Hugging Face cache folder, not a model folder; its refs/main names ${main}: pick that folder`;
    return `${dir}: is a Hugging Face cache folder, not a model folder; ${snapshotAdvice(snapshots, await subfolders(snapshots))}`;
  }
  if (name === 'snapshots' && /^models--.+--.+$/.test(basename(join(dir, '..')))) {
    const main = await mainSnapshot(dirname(dir));
    if (main) return `${dir}: is the snapshots folder of a Hugging Face cache, not a model folder; refs/main names ${main}: pick that folder`;
    return `${dir}: is the snapshots folder of a Hugging Face cache, not a model folder; ${snapshotAdvice(dir, await subfolders(dir))}`;
  }
  return null;
}
