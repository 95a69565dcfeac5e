// What a model generates with when no setting is given, for the Try page to
// start its fields from (sampling-settings.ts modelSampling): the model's
// generation_config.json values, transformers' defaults for the rest, which
// of them the file gives, and what in the file is not used. That is what
// `peft-studio generate` takes without flags, but for a file value that
// cannot be used: here transformers' default is filled in (and named in
// `problems`), where the CLI stops with the file's error when it would use
// the value, until the setting is given as a flag. Reads the file only: no
// weights, no engine.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ApiError, type GenerationDefaults } from '../api/contract.js';
import { GENERATION_CONFIG_FILE, generationConfigProblem, ignoredKeysNotice, readGenerationConfig } from '../models/generation-config.js';
import { FILE_KEYS, modelSampling, TRANSFORMERS_DEFAULTS, type SamplingKey } from './sampling-settings.js';

export async function generationDefaults(model: string): Promise<GenerationDefaults> {
  const dir = resolve(model);
  const isFolder = await stat(dir).then((s) => s.isDirectory(), () => false);
  if (!isFolder) throw new ApiError({ code: 'invalid', field: 'model', message: `${dir}: is not a folder; choose the model's folder` });
  const config = await readGenerationConfig(dir);
  const broken = await generationConfigProblem(dir);
  const problems = broken === null ? [] : [broken];
  for (const key of Object.keys(config?.invalid ?? {}) as SamplingKey[]) {
    problems.push(`${config!.file}: ${config!.invalid[key]}, so transformers' default ${FILE_KEYS[key]} ${TRANSFORMERS_DEFAULTS[key]} is filled in; fix the file (or remove ${FILE_KEYS[key]})`);
  }
  return {
    sampling: modelSampling(config),
    // a file that is there but cannot be read or parsed is named too: the model has one, `problems` says why it is not used
    file: config?.file ?? (broken === null ? null : join(dir, GENERATION_CONFIG_FILE)),
    fromFile: config?.fromFile ?? [],
    problems,
    unapplied: ignoredKeysNotice(config),
  };
}
