// Writing Hugging Face model folders: the files beside the weights (config,
// generation config, tokenizer) copied from the base, and a full checkpoint
// of the engine's weights (what full fine-tuning produces).
import { readdir, readFile, stat } from 'node:fs/promises';
import { copyFileDurable } from '../files/durable-copy.js';
import { CHAT_TEMPLATE_DIR } from '../models/chat-template-source.js';
import { makeFolder } from '../files/make-folder.js';
import { join } from 'node:path';
import type { ModelSpec, NativeEngine } from '../engine/native.js';
import { writeFileAtomic } from '../files/atomic.js';
import { expectedTensors, type ModelFolder } from '../models/folder.js';
import { safetensorsFileSize, writeSafetensors, type TensorToWrite } from '../safetensors/write.js';

/** Files of a model folder other than the weights that a copy must carry along. */
export const SIDE_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
] as const;

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Copies the side files the base folder has (all but those in `skip`), and its named chat templates. */
export async function copySideFiles(fromDir: string, toDir: string, skip: readonly string[] = []): Promise<string[]> {
  await makeFolder(toDir);
  const copied: string[] = [];
  for (const name of SIDE_FILES) {
    if (skip.includes(name)) continue;
    if (await exists(join(fromDir, name))) {
      await copyFileDurable(join(fromDir, name), join(toDir, name));
      copied.push(name);
    }
  }
  const named = await readdir(join(fromDir, CHAT_TEMPLATE_DIR)).catch(() => [] as string[]);
  for (const file of named.filter((f) => f.endsWith('.jinja')).sort()) {
    const from = join(fromDir, CHAT_TEMPLATE_DIR, file);
    if (!(await exists(from))) continue;
    await makeFolder(join(toDir, CHAT_TEMPLATE_DIR));
    await copyFileDurable(from, join(toDir, CHAT_TEMPLATE_DIR, file));
    copied.push(`${CHAT_TEMPLATE_DIR}/${file}`);
  }
  return copied;
}

/** The base's config.json with the weight dtype replaced (torch_dtype, and dtype as newer transformers writes it). */
export async function configWithDType(fromDir: string, torchDType: string): Promise<Record<string, unknown>> {
  const config = JSON.parse(await readFile(join(fromDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  config.torch_dtype = torchDType;
  if ('dtype' in config) config.dtype = torchDType;
  return config;
}

/**
 * Saves every weight of the engine as one F32 model.safetensors plus the
 * base's config and tokenizer. F32 because these are the trained master
 * weights: rounding to a 16-bit base dtype would erase updates smaller than
 * its resolution (a 1e-5 learning rate moves weights by less than a BF16 ulp).
 */
export async function saveFullModel(engine: NativeEngine, base: ModelFolder, outDir: string): Promise<void> {
  await makeFolder(outDir);
  const tensors: [string, TensorToWrite][] = expectedTensors(base.spec).map(({ name, shape }) => [
    name,
    { dtype: 'F32', shape, data: engine.getTensor(name) },
  ]);
  await writeSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
  await copySideFiles(base.dir, outDir, ['config.json']);
  await writeFileAtomic(join(outDir, 'config.json'), JSON.stringify(await configWithDType(base.dir, 'float32'), null, 2) + '\n');
}

/** Bytes of the model.safetensors that saveFullModel writes for this spec (exact). */
export function fullModelFileBytes(spec: ModelSpec): number {
  return safetensorsFileSize(expectedTensors(spec).map(({ name, shape }) => ({ name, dtype: 'F32' as const, shape })), { format: 'pt' });
}
