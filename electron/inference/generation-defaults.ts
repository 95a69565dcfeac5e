// What a model generates with when no setting is given, for the Try page to
// start its fields from: the values `peft-studio generate` takes without
// flags (sampling-settings.ts modelSampling), which of them the model's
// generation_config.json gives, and what in the file is not used. Reads the
// file only: no weights, no engine.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ApiError, type GenerationDefaults } from '../api/contract.js';
import { generationConfigProblem, ignoredKeysNotice, readGenerationConfig } from '../models/generation-config.js';
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
    file: config?.file ?? null,
    fromFile: config?.fromFile ?? [],
    problems,
    unapplied: ignoredKeysNotice(config),
  };
}
