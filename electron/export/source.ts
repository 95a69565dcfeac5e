// What `export` exports: a training run folder (train --out: run.json names
// the base model and the data; the final adapter lies at the folder's top
// level) or a PEFT adapter folder (the base from --model, or from the
// adapter's base_model_name_or_path when that is a folder on this machine).
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../adapters/peft.js';

export const RUN_FILE = 'run.json';

export interface ExportSource {
  kind: 'run' | 'adapter';
  /** the folder the user named (absolute) */
  dir: string;
  /** the folder holding adapter_config.json (absolute) */
  adapterDir: string;
  /** the base model folder (absolute) */
  modelDir: string;
  /** adapter_config.json's peft_type ("LORA", "PROMPT_TUNING", ...) */
  peftType: string;
  /** the run's training data, for the reload check (null for an adapter folder) */
  runData: string | null;
  /** the run's sequence length (null for an adapter folder) */
  runSeqLen: number | null;
  /** the run's data format and masking (run.json; null when it does not say) */
  runDataFormat: string | null;
  runCompletionOnly: boolean | null;
  /** the run's --eval-split fraction and seed (run.json; 0 and null when it has none) */
  runEvalSplit: number;
  runSeed: number | null;
}

export class ExportSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportSourceError';
  }
}

async function kindOf(path: string): Promise<'file' | 'dir' | null> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file';
  } catch {
    return null;
  }
}

async function readJsonObject(file: string, what: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ExportSourceError(`${file}: cannot be read as JSON (${(err as Error).message}); the ${what} is damaged`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ExportSourceError(`${file}: is not a JSON object; the ${what} is damaged`);
  return value as Record<string, unknown>;
}

/** Resolves RUN_OR_ADAPTER (and an optional --model) to the adapter and its base. */
export async function resolveExportSource(path: string, modelOverride: string | null = null): Promise<ExportSource> {
  const dir = resolve(path);
  const kind = await kindOf(dir);
  if (kind === null) throw new ExportSourceError(`${dir}: no such folder; give a training run folder (train --out) or a PEFT adapter folder`);
  if (kind === 'file') throw new ExportSourceError(`${dir}: is a file; give a training run folder (train --out) or a PEFT adapter folder`);
  const hasConfig = (await kindOf(join(dir, ADAPTER_CONFIG_FILE))) === 'file';

  let modelDir: string | null = modelOverride === null ? null : resolve(modelOverride);
  let runData: string | null = null;
  let runSeqLen: number | null = null;
  let runDataFormat: string | null = null;
  let runCompletionOnly: boolean | null = null;
  let runEvalSplit = 0;
  let runSeed: number | null = null;
  const isRun = (await kindOf(join(dir, RUN_FILE))) === 'file';
  if (isRun) {
    const run = await readJsonObject(join(dir, RUN_FILE), 'run folder');
    const config = (run.config ?? {}) as Record<string, unknown>;
    if (config.method === 'full') {
      throw new ExportSourceError(`${dir}: is a full fine-tuning run; it has no adapter to export. Its folder already is a Hugging Face model (config.json + model.safetensors): use it as it is`);
    }
    if (!hasConfig) {
      throw new ExportSourceError(`${dir}: the run has no final adapter (no ${ADAPTER_CONFIG_FILE} at its top level): it is still training or was interrupted. Finish it with 'train --resume ${dir}', or export a checkpoint folder (${join(dir, 'checkpoints', 'step-N')})`);
    }
    if (modelDir === null) {
      if (typeof config.model !== 'string') throw new ExportSourceError(`${join(dir, RUN_FILE)}: has no config.model naming the base model; pass --model DIR`);
      modelDir = resolve(dir, config.model);
    }
    if (typeof config.data === 'string') runData = resolve(dir, config.data);
    if (typeof config.seqLen === 'number' && Number.isInteger(config.seqLen) && config.seqLen > 1) runSeqLen = config.seqLen;
    if (typeof config.dataFormat === 'string') runDataFormat = config.dataFormat;
    if (typeof config.completionOnly === 'boolean') runCompletionOnly = config.completionOnly;
    if (typeof config.evalSplit === 'number' && config.evalSplit > 0 && config.evalSplit < 1) runEvalSplit = config.evalSplit;
    if (typeof config.seed === 'number' && Number.isInteger(config.seed)) runSeed = config.seed;
  } else if (!hasConfig) {
    throw new ExportSourceError(`${dir}: is neither a training run folder (no ${RUN_FILE}) nor a PEFT adapter folder (no ${ADAPTER_CONFIG_FILE}). Pick the folder train --out wrote, or the folder holding ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}`);
  }

  const adapterConfig = await readJsonObject(join(dir, ADAPTER_CONFIG_FILE), 'adapter');
  const peftType = typeof adapterConfig.peft_type === 'string' ? adapterConfig.peft_type : '(missing)';
  if (modelDir === null) {
    const base = adapterConfig.base_model_name_or_path;
    if (typeof base === 'string' && base !== '' && (await kindOf(resolve(base))) === 'dir') {
      modelDir = resolve(base);
    } else {
      const named = typeof base === 'string' && base !== '' ? `its base_model_name_or_path "${base}" is not a folder on this machine` : 'it names no base model';
      throw new ExportSourceError(`${dir}: ${named}; pass --model DIR with the base model folder the adapter was trained on`);
    }
  }
  return { kind: isRun ? 'run' : 'adapter', dir, adapterDir: dir, modelDir, peftType, runData, runSeqLen, runDataFormat, runCompletionOnly, runEvalSplit, runSeed };
}
