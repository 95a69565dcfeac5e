// `export`: a LoRA adapter (from a training run or an adapter folder) written
// as a PEFT folder, a merged Hugging Face model, a GGUF adapter for llama.cpp
// and Ollama (with ggufBase also its base as base.gguf, so the folder needs
// nothing else) and/or the merged model as one GGUF file (gguf-model; also
// from a full fine-tuning run or a checkpoint of one, whose weights are
// converted as they are; source.ts says what a source is). Every format is
// written into one temp folder beside the target, read back with the
// project's own loaders and scored against the source; only when every check
// passes is the folder moved into place, so a failure leaves nothing behind
// and an existing target is only replaced with `overwrite`.
// This file is the orchestration: the source, the refusals made before any
// work (export-target.ts, not-lora.ts, gguf-model-preflight.ts), the source's
// score, one step per format (export-peft.ts, export-merged.ts,
// export-gguf-adapter.ts, export-gguf-model.ts) and the move into place.
import { join, resolve } from 'node:path';
import { readPeftAdapter, type PeftLoraAdapter } from '../adapters/peft.js';
import { adapterTrainingQuantization } from '../adapters/base-quantization.js';
import { loadAddon } from '../engine/load.js';
import type { NativeAddon, QuantizationOptions } from '../engine/native.js';
import { writeFolderAtomic } from '../files/atomic.js';
import type { NamedInput } from '../files/output-overlap.js';
import { openModelFolder } from '../models/folder.js';
import { runFolderOf } from '../runs/full-run.js';
import { effectiveQuantization } from '../session.js';
import { countOf } from '../text/plural.js';
import { checkRowsFor, type CheckRowsFrom } from './check-rows.js';
import { ExportError } from './export-error.js';
import { exportGgufAdapter, type GgufBaseSummary } from './export-gguf-adapter.js';
import { exportGgufModel, GGUF_MODEL_FILE } from './export-gguf-model.js';
import { exportMerged } from './export-merged.js';
import { chatTemplateToCarry } from './carried-chat-template.js';
import { exportPeft } from './export-peft.js';
import { checkExportDestination, targetFolderError } from './export-target.js';
import type { CheckLoss, FormatStep } from './format-step.js';
import type { GgufTensorType } from './gguf-lora.js';
import type { GgufModelType } from './gguf-model.js';
import { refuseGgufModelEarly } from './gguf-model-preflight.js';
import type { GgufVocab } from './gguf-vocab.js';
import { MODELFILE } from './modelfile.js';
import { doraGgufMessage, notLoraMessage } from './not-lora.js';
import { resolveExportSource, type ExportSource } from './source.js';
import { compareLoss, ExportCheckError, lossOfModel, lossWithLora, type LossCheck } from './verify.js';

export { ExportError };

export const EXPORT_FORMATS = ['peft', 'merged', 'gguf', 'gguf-model'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Tensor types of the GGUF adapter (llama.cpp applies adapters in F32/F16). */
export const GGUF_ADAPTER_TYPES: readonly GgufTensorType[] = ['f32', 'f16'];

export interface ExportOptions {
  /** a training run folder (train --out) or a PEFT adapter folder */
  source: string;
  formats: readonly ExportFormat[];
  /** one format: the export's folder; several: a folder holding one subfolder per format (peft/, merged/, gguf/) */
  out: string;
  /** base model folder; default: the run's model, or the adapter's base_model_name_or_path when it is a folder */
  model?: string | null;
  /** replace a non-empty `out` (the old folder stays until the new one is complete and checked) */
  overwrite?: boolean;
  /** how the caller lets a user allow overwriting, for the error message (e.g. "pass --overwrite") */
  howToOverwrite?: string;
  /**
   * GGUF tensor type. The adapter (gguf): f32 or f16, default f32. The model
   * (gguf-model): f32, f16, bf16 or q8_0, default the model's own 16-bit type
   * (gguf-model.ts defaultGgufModelType).
   */
  ggufType?: GgufModelType;
  /**
   * gguf: also write the base model as base.gguf (in ggufType, default
   * gguf-model's auto type) with the Modelfile FROM it: a folder llama.cpp
   * (llama-cli -m base.gguf --lora adapter.gguf) and Ollama use as it is
   */
  ggufBase?: boolean;
  /** rows for the reload check, any dataset file train reads; default: the run's eval rows (or first rows), else a built-in sample */
  checkData?: string | null;
  /** rows scored by the check (default 8) */
  checkRows?: number;
  threads: number;
  addon?: NativeAddon;
  /** progress lines */
  log?: (line: string) => void;
}

export interface ExportOutput {
  format: ExportFormat;
  /** absolute folder of this format's files */
  dir: string;
  files: string[];
}

/** The reload check every export passed. */
export interface ExportCheckSummary {
  /** where the scored rows came from */
  rowsFrom: CheckRowsFrom;
  /** the data file (null for the built-in sample) */
  data: string | null;
  /** run data: true when the rows are the run's eval split, false when they are the data's first rows */
  evalRows: boolean;
  /** why the run's data was not used (then the built-in sample was) */
  note?: string;
  rows: number;
  tokens: number;
  sourceLoss: number;
  /**
   * The 4-bit base the source adapter was scored on (a QLoRA adapter: the
   * model it was trained as), else null (the base as stored). Every check
   * compares with that score; see verify.ts LOSS_TOLERANCE.
   */
  quantization: QuantizationOptions | null;
  checks: LossCheck[];
}

export interface ExportResult {
  out: string;
  source: ExportSource;
  outputs: ExportOutput[];
  check: ExportCheckSummary;
  /** GGUF only: the adapter.lora.alpha written (alpha * sqrt(r) for rsLoRA) */
  ggufAlpha?: number;
  /** gguf-model only: the tensor type written and llama.cpp's pre-tokenizer name */
  ggufModel?: { type: GgufModelType; architecture: string; pre: string; fileBytes: number };
  /** gguf with ggufBase only: base.gguf's type and size, and for QLoRA what its 16-bit base changes */
  ggufBase?: GgufBaseSummary;
}

export async function exportAdapter(options: ExportOptions): Promise<ExportResult> {
  const log = options.log ?? (() => {});
  const formats = [...new Set(options.formats)];
  if (formats.length === 0) throw new ExportError(`no export format given; use ${EXPORT_FORMATS.join(', ')}`);
  if (options.ggufType !== undefined && formats.includes('gguf') && !GGUF_ADAPTER_TYPES.includes(options.ggufType as GgufTensorType)) {
    throw new ExportError(`--gguf-type ${options.ggufType}: the GGUF adapter (format gguf) is written as f32 or f16 only, the types llama.cpp applies adapters in; ${options.ggufType} is for the whole model (format gguf-model)`);
  }
  const ggufType = (options.ggufType ?? 'f32') as GgufTensorType;
  if (options.ggufBase && !formats.includes('gguf')) {
    throw new ExportError(`--gguf-base writes base.gguf beside the GGUF adapter: it needs --format gguf (the gguf-model format already is one whole model)`);
  }
  const source = await resolveExportSource(options.source, options.model ?? null, formats);
  if (source.kind !== 'full-run' && source.peftType !== 'LORA') throw new ExportError(notLoraMessage(source, formats));
  const adapterSource = source.kind === 'full-run' ? null : source;
  if (adapterSource?.dora && formats.includes('gguf')) throw new ExportError(doraGgufMessage(adapterSource));
  const out = resolve(options.out);
  // Refuse before any work (the source's loss takes a while); writeFolderAtomic checks again when it moves the result in.
  const run = source.kind === 'full-run' ? source.runDir : await runFolderOf(source.adapterDir);
  const inputs: NamedInput[] = [
    { what: source.kind === 'adapter' ? 'the adapter folder' : source.kind === 'full-run' && source.checkpointStep !== null ? 'the checkpoint folder' : 'the run folder', path: source.dir },
    ...(adapterSource ? [{ what: 'the base model folder', path: adapterSource.modelDir }] : []),
    ...(run !== null && run !== source.dir ? [{ what: source.kind === 'full-run' ? "the checkpoint's run folder" : "the adapter's run folder", path: run }] : []),
    // the rows the check reads: an --out holding them would delete them with --overwrite
    ...(options.checkData ? [{ what: 'the --check-data file', path: options.checkData }] : source.runData ? [{ what: "the run's data file", path: source.runData }] : []),
  ];
  // (it also tidies what a killed export left beside --out, and says what)
  const tidied = await checkExportDestination(out, inputs, options);
  if (tidied !== null) log(tidied);

  // A full run's folder is the model; an adapter's base is the model it was trained on.
  const folder = await openModelFolder(source.modelDir);
  // The tokenizer's GGUF vocabulary, built once here for the GGUF writers (the reload check builds its own, to compare the file with).
  const vocab: GgufVocab | null = formats.includes('gguf-model') || options.ggufBase ? await refuseGgufModelEarly(folder, options.ggufBase === true, log) : null;
  const builtVocab = (): GgufVocab => {
    if (vocab === null) throw new Error('internal: a GGUF model is written without the vocabulary the early refusal builds');
    return vocab;
  };
  const adapter: PeftLoraAdapter | null = adapterSource ? await readPeftAdapter(adapterSource.adapterDir, folder.spec) : null;
  const addon = options.addon ?? loadAddon();
  const threads = options.threads;
  // A QLoRA adapter is scored on the 4-bit base it was trained on (the run's
  // run.json, also for a checkpoint of it; a bitsandbytes folder as saved): that is
  // the model the user trained, and what the merged export must reproduce (verify.ts).
  const quantization = adapterSource ? effectiveQuantization(folder, await adapterTrainingQuantization(run ?? adapterSource.adapterDir)) : null;

  const rows = await checkRowsFor(options, source, folder);
  if (rows.note) log(`reload check: ${rows.note}; scoring the built-in sample instead`);
  const examples = rows.examples;
  const scored = adapter
    ? await lossWithLora(addon, folder, adapter.lora, adapter.tensors, examples, threads, quantization)
    : await lossOfModel(addon, folder, examples, threads);
  const sourceLoss = scored.loss;
  const what = rows.file === null ? 'the built-in sample' : `${rows.evalRows ? "the run's eval rows" : 'the first rows'} of ${rows.file}`;
  const on = quantization ? ` on its 4-bit NF4 base (blocksize ${quantization.blocksize}${quantization.doubleQuant ? ', double quantization' : ''}), as trained` : '';
  const fullWhat = source.kind === 'full-run' && source.checkpointStep !== null ? `model (full fine-tuning run, checkpoint step ${source.checkpointStep})` : 'model (full fine-tuning run)';
  log(`source ${adapter ? 'adapter' : fullWhat}${on}: loss ${sourceLoss.toFixed(6)} on ${countOf(examples.length, 'row')}, ${countOf(scored.tokens, 'token')} of ${what}`);

  const outputs: ExportOutput[] = [];
  const checks: LossCheck[] = [];
  let ggufAlpha: number | undefined;
  let ggufModel: ExportResult['ggufModel'];
  let ggufBase: GgufBaseSummary | null = null;
  /** `reference`: what this export must reproduce when it is not the source as scored (a QLoRA adapter's 16-bit base.gguf) */
  const check: CheckLoss = (format, loss, tolerance, reference = sourceLoss) => {
    const c = compareLoss(format, loss, reference, tolerance);
    log(`check ${format}: loss ${loss.toFixed(6)} vs ${reference === sourceLoss ? 'source' : 'reference'} ${reference.toFixed(6)} (relative difference ${c.relativeDifference.toExponential(2)}, tolerance ${tolerance}) ${c.passed ? 'ok' : 'FAILED'}`);
    checks.push(c);
    if (!c.passed) throw new ExportCheckError(c, adapter ? 'adapter' : 'model');
  };

  // decided once for every format that holds a tokenizer (merged, gguf-model, base.gguf)
  const chatTemplate = await chatTemplateToCarry(source.dir, folder.dir);
  // A file-system error here names the temp folder beside `out`: reword it to name `out`.
  await writeFolderAtomic(out, async (temp) => {
    for (const format of formats) {
      const dir = formats.length === 1 ? temp : join(temp, format);
      const finalDir = formats.length === 1 ? out : join(out, format);
      const step: FormatStep = { dir, folder, quantization, examples, addon, threads, log, check, chatTemplate };
      if (format === 'gguf-model') {
        const written = await exportGgufModel({ ...step, scratch: join(temp, '.gguf-model-work'), source, adapterDir: adapterSource?.adapterDir ?? null, type: options.ggufType, vocab: builtVocab() });
        outputs.push({ format, dir: finalDir, files: [GGUF_MODEL_FILE, MODELFILE] });
        ggufModel = { type: written.type, architecture: written.architecture, pre: written.pre, fileBytes: written.fileBytes };
        continue;
      }
      if (!adapter || !adapterSource) throw new Error(`internal: format ${format} needs an adapter`);
      if (format === 'peft') {
        outputs.push({ format, dir: finalDir, files: await exportPeft(step, adapter, adapter.baseModelNameOrPath ?? source.modelDir) });
      } else if (format === 'merged') {
        outputs.push({ format, dir: finalDir, files: await exportMerged(step, adapterSource.adapterDir) });
      } else {
        const written = await exportGgufAdapter({
          ...step, scratch: join(temp, '.gguf-base-work'), source: adapterSource, adapter, type: ggufType,
          base: options.ggufBase ? { type: options.ggufType, vocab: builtVocab() } : null,
          sourceLoss,
        });
        ggufAlpha = written.alpha;
        ggufBase = written.base;
        outputs.push({ format, dir: finalDir, files: written.files });
      }
    }
  }, { overwrite: options.overwrite, howToOverwrite: options.howToOverwrite }).catch((err: unknown) => {
    throw targetFolderError(err, out) ?? err;
  });

  const summary: ExportCheckSummary = {
    rowsFrom: rows.from,
    data: rows.file,
    evalRows: rows.evalRows,
    ...(rows.note === undefined ? {} : { note: rows.note }),
    rows: examples.length,
    tokens: scored.tokens,
    sourceLoss,
    quantization,
    checks,
  };
  return {
    out, source, outputs, check: summary,
    ...(ggufAlpha === undefined ? {} : { ggufAlpha }),
    ...(ggufModel === undefined ? {} : { ggufModel }),
    ...(ggufBase === null ? {} : { ggufBase }),
  };
}
