// What `export` exports, resolved once for the CLI and the app:
//   a LoRA run folder      (train --out: run.json names the base model and the data; the
//                           final adapter lies at the folder's top level)
//   a PEFT adapter folder  (a LoRA run's checkpoints/step-N too: the base from --model, or
//                           from the adapter's base_model_name_or_path when that is a folder here)
//   a full fine-tuning run (run.json config.method "full": its folder is the fine-tuned model
//                           itself) or one of its checkpoints/step-N folders (also a whole
//                           model), with the run's data for the reload check;
//   a run's best/           (train --keep-best: the adapter, or a full run's model, of its lowest
//                           eval loss; best.json names the step): as a checkpoint of the run, with
//                           the run's base model and data.
// A full run has no adapter and no separate base: its source kind carries
// neither, so code that needs an adapter must first narrow the kind.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../adapters/peft.js';
import { CONFIG_FILE } from '../models/folder.js';
import { COMPLETE_MARKER } from '../runs/checkpoint-format.js';
import { CHECKPOINTS_DIR, runDirOfCheckpoint } from '../runs/layout.js';
import { BEST_DIR, readBestAdapter } from '../runs/best-adapter.js';
import { resolveCachedModel } from '../models/hf-cache.js';

export const RUN_FILE = 'run.json';

/** What run.json says about the run's data, for the reload check (all null / 0 without a run). */
export interface RunDataFacts {
  /** the run's training data (null for an adapter folder) */
  runData: string | null;
  /** the run's sequence length (null for an adapter folder) */
  runSeqLen: number | null;
  /** the run's data format and masking (run.json; null when it does not say) */
  runDataFormat: string | null;
  runCompletionOnly: boolean | null;
  /** the run's --eval-split fraction and seed (run.json; 0 and null when it has none) */
  runEvalSplit: number;
  /** the run's evaluation file (--eval-data; null when it has none): its rows are the run's eval rows */
  runEvalData: string | null;
  runSeed: number | null;
}

/** A LoRA (or other PEFT) adapter: a run's final adapter or an adapter folder. */
export interface AdapterExportSource extends RunDataFacts {
  kind: 'run' | 'adapter';
  /** the folder the user named (absolute) */
  dir: string;
  /** the folder holding adapter_config.json (absolute) */
  adapterDir: string;
  /** the base model folder (absolute) */
  modelDir: string;
  /** adapter_config.json's peft_type ("LORA", "PROMPT_TUNING", ...) */
  peftType: string;
  /** adapter_config.json's use_dora is true (a DoRA adapter: no GGUF adapter can hold it) */
  dora: boolean;
}

/** A full fine-tuning run's model: the run folder's final model, or a checkpoint of it. */
export interface FullRunExportSource extends RunDataFacts {
  kind: 'full-run';
  /** the folder the user named (absolute): the run folder or checkpoints/step-N */
  dir: string;
  /** the model folder to convert: `dir` itself */
  modelDir: string;
  /** the run folder (holding run.json) */
  runDir: string;
  /** the checkpoint's step, or null for the run's final model */
  checkpointStep: number | null;
  /** the run's best/ (train --keep-best) rather than a checkpoints/step-N folder */
  best?: boolean;
}

export type ExportSource = AdapterExportSource | FullRunExportSource;

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

/** run.json's config object ({} when it has none). */
async function runConfig(runDir: string): Promise<Record<string, unknown>> {
  const run = await readJsonObject(join(runDir, RUN_FILE), 'run folder');
  const config = run.config;
  return typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Record<string, unknown>) : {};
}

function runDataFacts(runDir: string, config: Record<string, unknown>): RunDataFacts {
  const seqLen = config.seqLen;
  return {
    runData: typeof config.data === 'string' ? resolve(runDir, config.data) : null,
    runSeqLen: typeof seqLen === 'number' && Number.isInteger(seqLen) && seqLen > 1 ? seqLen : null,
    runDataFormat: typeof config.dataFormat === 'string' ? config.dataFormat : null,
    runCompletionOnly: typeof config.completionOnly === 'boolean' ? config.completionOnly : null,
    runEvalSplit: typeof config.evalSplit === 'number' && config.evalSplit > 0 && config.evalSplit < 1 ? config.evalSplit : 0,
    runEvalData: typeof config.evalData === 'string' && config.evalData !== '' ? resolve(runDir, config.evalData) : null,
    runSeed: typeof config.seed === 'number' && Number.isInteger(config.seed) ? config.seed : null,
  };
}

const NO_RUN_DATA: RunDataFacts = { runData: null, runSeqLen: null, runDataFormat: null, runCompletionOnly: null, runEvalSplit: 0, runEvalData: null, runSeed: null };

/**
 * The run a checkpoints/step-N folder or a best/ folder (with its best.json) belongs to (it holds run.json), or null.
 * The one rule for it: export and the prompt layout (inference/trained-prompt-format.ts) both find a run this way.
 */
export async function runOfCheckpoint(dir: string): Promise<{ runDir: string; step: number; best: boolean } | null> {
  if (basename(dir) === BEST_DIR && (await kindOf(join(dirname(dir), RUN_FILE))) === 'file') {
    const best = await readBestAdapter(dirname(dir));
    if (best !== null) return { runDir: dirname(dir), step: best.step, best: true };
  }
  const checkpoint = runDirOfCheckpoint(dir);
  return checkpoint && (await kindOf(join(checkpoint.runDir, RUN_FILE))) === 'file' ? { ...checkpoint, best: false } : null;
}

/** The one export format a full run's model has: it holds no adapter to copy, merge or convert. */
export const FULL_RUN_FORMAT = 'gguf-model';

/**
 * A full run's final model or checkpoint as a source, refused with the reason
 * when the formats asked for need an adapter, or it holds no complete model.
 */
async function fullRunSource(dir: string, runDir: string, step: number | null, config: Record<string, unknown>, modelOverride: string | null, formats: readonly string[] | null, best = false): Promise<FullRunExportSource> {
  const what = step === null ? 'is a full fine-tuning run' : best ? `is the best model (step ${step}) of the full fine-tuning run ${runDir}` : `is a checkpoint of the full fine-tuning run ${runDir}`;
  const others = (formats ?? []).filter((f) => f !== FULL_RUN_FORMAT);
  if (others.length > 0) {
    throw new ExportSourceError(`${dir}: ${what}; it has no adapter to export as ${others.join(', ')}. Its folder already is a Hugging Face model (config.json + model.safetensors): use it as it is, or export it with --format ${FULL_RUN_FORMAT} for llama.cpp and Ollama`);
  }
  if (modelOverride !== null) {
    throw new ExportSourceError(`${dir}: ${what}: its folder is the fine-tuned model itself, so there is no base model to choose; leave out --model`);
  }
  if (step === null) {
    if ((await kindOf(join(dir, CONFIG_FILE))) !== 'file') {
      throw new ExportSourceError(`${dir}: the full fine-tuning run has no final model (no ${CONFIG_FILE} at its top level): it is still training or was interrupted. Finish it with 'train --resume ${dir}', or export a checkpoint folder (${join(dir, CHECKPOINTS_DIR, 'step-N')})`);
    }
  } else if (best) {
    // best/ is replaced as a whole (writeFolderAtomic): with best.json read, its model is complete
    if ((await kindOf(join(dir, CONFIG_FILE))) !== 'file') throw new ExportSourceError(`${dir}: holds no ${CONFIG_FILE}; the run's best model folder is damaged. Export the run's final model or a checkpoint instead`);
  } else if ((await kindOf(join(dir, COMPLETE_MARKER))) !== 'file' || (await kindOf(join(dir, CONFIG_FILE))) !== 'file') {
    throw new ExportSourceError(`${dir}: the checkpoint is incomplete (no ${COMPLETE_MARKER} marker or no ${CONFIG_FILE}): the run stopped while writing it. Export the run's final model or another checkpoint of ${join(runDir, CHECKPOINTS_DIR)}`);
  }
  return { kind: 'full-run', dir, modelDir: dir, runDir, checkpointStep: step, ...(best ? { best: true } : {}), ...runDataFacts(runDir, config) };
}

/**
 * Resolves RUN_OR_ADAPTER (and an optional --model) to what is exported: an
 * adapter and its base, or a full run's model. With `formats`, a full run
 * asked for a format that needs an adapter is refused first, saying so.
 */
export async function resolveExportSource(path: string, modelOverride: string | null = null, formats: readonly string[] | null = null): Promise<ExportSource> {
  const dir = resolve(path);
  const kind = await kindOf(dir);
  if (kind === null) throw new ExportSourceError(`${dir}: no such folder; give a training run folder (train --out) or a PEFT adapter folder`);
  if (kind === 'file') throw new ExportSourceError(`${dir}: is a file; give a training run folder (train --out) or a PEFT adapter folder`);
  const hasConfig = (await kindOf(join(dir, ADAPTER_CONFIG_FILE))) === 'file';

  let modelDir: string | null = modelOverride === null ? null : resolve(modelOverride);
  let facts = NO_RUN_DATA;
  const isRun = (await kindOf(join(dir, RUN_FILE))) === 'file';
  if (isRun) {
    const config = await runConfig(dir);
    if (config.method === 'full') return fullRunSource(dir, dir, null, config, modelOverride, formats);
    if (!hasConfig) {
      throw new ExportSourceError(`${dir}: the run has no final adapter (no ${ADAPTER_CONFIG_FILE} at its top level): it is still training or was interrupted. Finish it with 'train --resume ${dir}', or export a checkpoint folder (${join(dir, CHECKPOINTS_DIR, 'step-N')})`);
    }
    if (modelDir === null) {
      if (typeof config.model !== 'string') throw new ExportSourceError(`${join(dir, RUN_FILE)}: has no config.model naming the base model; pass --model DIR`);
      modelDir = resolve(dir, config.model);
    }
    facts = runDataFacts(dir, config);
  } else {
    const checkpoint = await runOfCheckpoint(dir);
    if (checkpoint !== null) {
      // a damaged run.json of a LoRA run does not stop its checkpoint's adapter from being exported
      const config = await runConfig(checkpoint.runDir).catch(() => ({}) as Record<string, unknown>);
      if (config.method === 'full') return fullRunSource(dir, checkpoint.runDir, checkpoint.step, config, modelOverride, formats, checkpoint.best);
      if (checkpoint.best && hasConfig) {
        // the run's best adapter: the run's base model (unless --model) and its data for the reload check
        if (modelDir === null && typeof config.model === 'string') modelDir = resolve(checkpoint.runDir, config.model);
        facts = runDataFacts(checkpoint.runDir, config);
      }
    }
    if (!hasConfig) {
      throw new ExportSourceError(`${dir}: is neither a training run folder (no ${RUN_FILE}) nor a PEFT adapter folder (no ${ADAPTER_CONFIG_FILE}). Pick the folder train --out wrote, or the folder holding ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}`);
    }
  }

  const adapterConfig = await readJsonObject(join(dir, ADAPTER_CONFIG_FILE), 'adapter');
  const peftType = typeof adapterConfig.peft_type === 'string' ? adapterConfig.peft_type : '(missing)';
  if (modelDir === null) {
    const base = adapterConfig.base_model_name_or_path;
    // a folder here, or (as PEFT writes it) a repo id of a model in the Hugging Face cache
    const cached = typeof base === 'string' && base !== '' ? await resolveCachedModel(base).catch(() => null) : null;
    if (typeof base === 'string' && base !== '' && (await kindOf(resolve(base))) === 'dir') {
      modelDir = resolve(base);
    } else if (cached) {
      // the revision the adapter was trained on (PEFT's revision), not whatever refs/main names now
      const revision = typeof adapterConfig.revision === 'string' && adapterConfig.revision !== '' ? adapterConfig.revision : null;
      const trainedOn = revision === null || revision === cached.revision ? cached.snapshot : join(cached.repoDir, 'snapshots', revision);
      if (!(await kindOf(trainedOn) === 'dir')) {
        throw new ExportSourceError(`${dir}: was trained on revision ${revision} of ${cached.repoId}, which is not in the Hugging Face cache (refs/main is ${cached.revision.slice(0, 12)}); ` +
          `fetch it with \`hf download ${cached.repoId} --revision ${revision}\` (nothing is downloaded here), or pass --model DIR with that base model folder`);
      }
      modelDir = trainedOn;
    } else {
      const named = typeof base === 'string' && base !== '' ? `its base_model_name_or_path "${base}" is not a folder on this machine, nor a model in the Hugging Face cache` : 'it names no base model';
      throw new ExportSourceError(`${dir}: ${named}; pass --model DIR with the base model folder the adapter was trained on`);
    }
  }
  return { kind: isRun ? 'run' : 'adapter', dir, adapterDir: dir, modelDir, peftType, dora: adapterConfig.use_dora === true, ...facts };
}

/** A short name for the exported model (GGUF general.name): the run, or the run and step of a checkpoint. */
export function exportSourceName(source: ExportSource): string {
  if (source.kind === 'full-run' && source.checkpointStep !== null) return `${basename(source.runDir)}-${source.best ? 'best' : 'step'}-${source.checkpointStep}`;
  if (source.kind === 'adapter' && basename(source.dir) === BEST_DIR && source.runData !== null) return `${basename(dirname(source.dir))}-best`;
  return basename(source.dir);
}
