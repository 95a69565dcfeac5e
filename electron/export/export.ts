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
import { access, constants, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { readPeftAdapter, writePeftAdapter, type PeftLoraAdapter } from '../adapters/peft.js';
import { loadAddon } from '../engine/load.js';
import type { NativeAddon } from '../engine/native.js';
import { FileWriteError, FolderExistsError, writeFileAtomic, writeFolderAtomic } from '../files/atomic.js';
import { makeFolder, refuseKernelPath } from '../files/make-folder.js';
import { refuseOutputOverInputs, type NamedInput } from '../files/output-overlap.js';
import { adapterTrainingQuantization } from '../adapters/base-quantization.js';
import type { QuantizationOptions } from '../engine/native.js';
import { runFolderOf } from '../runs/full-run.js';
import { effectiveQuantization } from '../session.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import type { Example } from '../training/data.js';
import { checkRowsFor, type CheckRowsFrom } from './check-rows.js';
import { readGgufLoraAdapter, writeGgufLoraAdapter, type GgufTensorType } from './gguf-lora.js';
import { ggufModelArchitecture, writeGgufModel, type GgufModelSummary, type GgufModelType } from './gguf-model.js';
import { ggufModelToFolder } from './gguf-model-read.js';
import { ggufVocab } from './gguf-vocab.js';
import { mergeAdapter } from './merge.js';
import { ollamaModelfile, ollamaModelfileForModel } from './modelfile.js';
import { exportSourceName, resolveExportSource, type AdapterExportSource, type ExportSource } from './source.js';
import {
  compareLoss,
  ExportCheckError,
  LOSS_TOLERANCE,
  lossOfModel,
  lossWithLora,
  type LossCheck,
} from './verify.js';
import { countOf } from '../text/plural.js';

export const EXPORT_FORMATS = ['peft', 'merged', 'gguf', 'gguf-model'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const GGUF_ADAPTER_FILE = 'adapter.gguf';
export const GGUF_MODEL_FILE = 'model.gguf';
/** --gguf-base: the base model beside adapter.gguf, so llama.cpp needs no Python converter */
export const GGUF_BASE_FILE = 'base.gguf';
/** Tensor types of the GGUF adapter (llama.cpp applies adapters in F32/F16). */
export const GGUF_ADAPTER_TYPES: readonly GgufTensorType[] = ['f32', 'f16'];
export const MODELFILE = 'Modelfile';

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

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** Parses a --format value: one format or a comma list. */
export function parseExportFormats(value: string): ExportFormat[] {
  const out: ExportFormat[] = [];
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!EXPORT_FORMATS.includes(part as ExportFormat)) throw new ExportError(`unknown export format '${part}'; use ${EXPORT_FORMATS.join(', ')} (or a comma list of them)`);
    if (!out.includes(part as ExportFormat)) out.push(part as ExportFormat);
  }
  if (out.length === 0) throw new ExportError(`no export format given; use ${EXPORT_FORMATS.join(', ')}`);
  return out;
}

/** What an adapter of this PEFT type is, in words: virtual tokens, scaling vectors, other low-rank forms. */
export function describePeftType(peftType: string): { name: string; virtualTokens: boolean; what: string } {
  switch (peftType) {
    case 'PROMPT_TUNING':
    case 'P_TUNING':
    case 'MULTITASK_PROMPT_TUNING':
    case 'PREFIX_TUNING':
      return { name: peftType === 'PREFIX_TUNING' ? 'prefix tuning' : peftType === 'P_TUNING' ? 'P-tuning' : 'prompt tuning', virtualTokens: true, what: 'it adds virtual tokens, not weight updates' };
    case 'IA3':
      return { name: '(IA)³', virtualTokens: false, what: 'it holds learned scaling vectors that multiply activations, not LoRA factors' };
    case 'ADALORA':
      return { name: 'AdaLoRA', virtualTokens: false, what: 'its low-rank update is an SVD-style triplet (lora_E), not plain LoRA factors' };
    case 'LOHA':
    case 'LOKR':
      return { name: peftType === 'LOHA' ? 'LoHa' : 'LoKr', virtualTokens: false, what: `its update is a ${peftType === 'LOHA' ? 'Hadamard' : 'Kronecker'} product of factors, not plain LoRA factors` };
    default:
      return { name: peftType, virtualTokens: false, what: 'it is not a LoRA adapter' };
  }
}

/** Why an adapter that is not LoRA cannot be exported to the first of these formats. */
function notLoraMessage(source: AdapterExportSource, formats: readonly ExportFormat[]): string {
  const type = describePeftType(source.peftType);
  const article = /^[aeiou(]/i.test(type.name) ? 'an' : 'a';
  const what = `${source.adapterDir}: is ${article} ${type.name} adapter (peft_type ${source.peftType}); ${type.what}`;
  if (formats.includes('gguf')) {
    return `${what}. A GGUF adapter holds LoRA factors only (adapter.type "lora"), so export cannot write it for llama.cpp or Ollama. Use it with PEFT as it is`;
  }
  if (formats.includes('merged') || formats.includes('gguf-model')) {
    return type.virtualTokens ? `${what}, so there is nothing to merge into the base weights` : `${what}, and export merges LoRA adapters only. Merge it with PEFT (merge_and_unload)`;
  }
  return `${what}; export handles LoRA adapters only, and this folder already is in the PEFT format: copy it as it is`;
}

async function isNonEmptyFolder(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

/** What a file-system error code means for the export folder, and what to do about it. */
function targetProblem(code: string, out: string): string {
  const parent = dirname(out);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code}). The export is written beside it in ${parent} and then moved into place, so that folder must be writable by you: fix its permissions, or choose another --out folder`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `the disk is full (${code}). Free some space, or choose an --out folder on another disk`;
    case 'EROFS':
      return `the file system is read-only (${code}). Choose an --out folder on a writable disk`;
    case 'ENAMETOOLONG':
      return `the folder name is too long for the file system (${code}). Choose a shorter --out folder name`;
    case 'ENOTDIR':
      return `a part of the path is a file, not a folder (${code}). Choose another --out folder`;
    default:
      return `the file system refused (${code}). Check that ${parent} is writable and the disk is not full, or choose another --out folder`;
  }
}

/**
 * The --out folder checked before any work (the source's loss takes a while):
 * not on a kernel file system, not a file, not the source or the base model
 * (nor inside or around them: writing replaces the whole folder), empty
 * unless overwrite, and its nearest existing folder writable.
 */
async function checkExportDestination(out: string, inputs: readonly NamedInput[], options: Pick<ExportOptions, 'overwrite' | 'howToOverwrite'>): Promise<void> {
  await refuseKernelPath(out, '--out');
  await refuseOutputOverInputs(out, inputs, 'the export');
  let head = out;
  for (;;) {
    let info;
    try {
      info = await stat(head);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ExportError(`${out}: cannot write the export folder: ${targetProblem(code ?? 'EIO', out)}.`);
      const parent = dirname(head);
      if (parent === head) break;
      head = parent;
      continue;
    }
    if (!info.isDirectory()) {
      throw new ExportError(head === out
        ? `--out ${out}: is a file, not a folder; choose a folder path for the export`
        : `--out ${out}: ${head} is a file, so no folder can be made below it; choose another --out folder`);
    }
    break;
  }
  if (head === out && !options.overwrite && (await isNonEmptyFolder(out))) throw new FolderExistsError(out, options.howToOverwrite);
  // The export is made beside --out and moved into place: that folder (or its nearest existing ancestor) must be writable.
  const writable = head === out ? dirname(out) : head;
  try {
    await access(writable, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    throw new ExportError(`${out}: cannot write the export folder: ${targetProblem(code, out)}.`);
  }
}

/**
 * An error writing the export's folder, reworded to name the --out folder:
 * the raw error names a temp folder beside it (.NAME.PID.HEX.tmp) the user
 * never chose. Errors about other paths (reading the base model) pass as
 * they are (null).
 */
function targetFolderError(err: unknown, out: string): ExportError | null {
  const e = err as (NodeJS.ErrnoException & { dest?: string }) | null;
  let path: string | undefined;
  let code: string | undefined;
  if (err instanceof FileWriteError) {
    path = err.file;
    code = /\(([A-Z][A-Z0-9_]+)\)/.exec(err.problem)?.[1] ?? 'EIO';
  } else if (e && typeof e.code === 'string') {
    path = e.path;
    code = e.code;
  }
  if (path === undefined || code === undefined) return null;
  if (resolve(path) === out && e?.dest !== undefined && (code === 'EPERM' || code === 'EACCES')) {
    // Moving the old --out aside failed although its parent took the new folder: the folder itself is protected.
    return new ExportError(`${out}: cannot replace the existing folder (${code}): the folder itself cannot be moved or removed. ` +
      `It is marked immutable (chattr +i; lsattr -d shows it), or it belongs to another user inside a shared folder such as /tmp. ` +
      `Remove the flag (chattr -i ${out}), or choose another --out folder.`);
  }
  const scratch = join(dirname(out), `.${basename(out)}.`);
  const ours = (p: string) => p === out || p.startsWith(scratch) || out.startsWith(p.endsWith(sep) ? p : p + sep);
  if (!ours(resolve(path)) && !(e?.dest !== undefined && ours(resolve(e.dest)))) return null;
  return new ExportError(`${out}: cannot write the export folder: ${targetProblem(code, out)}.`);
}

/**
 * The GGUF model refusals that read no weights (the architecture, the RoPE
 * scaling, the tokenizer; for --gguf-base a bitsandbytes 4-bit base), made
 * before the source is scored and the other formats are written, so a folder
 * llama.cpp cannot get right fails in a second, not after minutes of work.
 * writeGgufModel makes the same checks again when it writes. gguf-model
 * converts the merged model, so a 4-bit base is refused for --gguf-base only
 * (the merge dequantizes it). The merged folder keeps the base's tokenizer.
 */
async function refuseGgufModelEarly(folder: ModelFolder, ggufBase: boolean, log: (line: string) => void): Promise<void> {
  if (ggufBase && (folder.quantization !== null || folder.config.bnb4 !== null)) {
    throw new ExportError(`${folder.dir}: is saved in 4-bit by bitsandbytes; --gguf-base converts the base from 16- or 32-bit weights (GGUF has no NF4 type). Pass the original (unquantized) model folder with --model, or export without --gguf-base`);
  }
  // (gguf-model merges first, and the merge dequantizes a 4-bit base)
  try {
    ggufModelArchitecture(folder.spec, folder.dir);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  const vocab = await ggufVocab(folder.dir, folder.spec.vocabSize);
  if (vocab.normalizer === 'NFC') {
    log(`tokenizer.json normalizes text to Unicode NFC, which llama.cpp does not do (GGUF export accepts it, as the Hugging Face converter does): text already in NFC, nearly all text, tokenizes the same there; decomposed accents may not`);
  }
}

/**
 * gguf-model into `dir`: the adapter merged into its base (in `scratch`, as
 * the merged format does it) or a full run's model as it is, converted to
 * model.gguf + a Modelfile, then read back through our GGUF reader into
 * `scratch` and scored (check). `scratch` is removed in any case.
 */
async function exportGgufModel(o: {
  dir: string;
  scratch: string;
  folder: ModelFolder;
  source: ExportSource;
  /** the LoRA adapter folder merged in first, or null (a full run's model, converted as it is) */
  adapterDir: string | null;
  quantization: QuantizationOptions | null;
  type: GgufModelType | undefined;
  examples: readonly Example[];
  addon: NativeAddon;
  threads: number;
  log: (line: string) => void;
  check: (format: string, loss: number, tolerance: number) => void;
}): Promise<GgufModelSummary> {
  try {
    let modelDir = o.folder.dir;
    let tolerance = 0;
    if (o.adapterDir !== null) {
      modelDir = join(o.scratch, 'merged');
      const merged = await mergeAdapter(o.folder.dir, o.adapterDir, modelDir, { addon: o.addon, threads: o.threads, quantization: o.quantization });
      o.log(`merged ${countOf(merged.mergedTensors, 'weight')} (scaling ${merged.scaling}) for the GGUF model`);
      // the merged weights carry their own storage rounding (see the merged format's check)
      tolerance = LOSS_TOLERANCE.merged[(await openModelFolder(modelDir)).storedDType] ?? LOSS_TOLERANCE.merged.BF16;
    }
    await makeFolder(o.dir);
    const file = join(o.dir, GGUF_MODEL_FILE);
    // A full run's own default is f32: its weights are what was trained, and a short run's updates are often
    // below a 16-bit type's step (the converter's "auto" would round them away; the check would then refuse).
    const type = o.type ?? (o.source.kind === 'full-run' ? 'f32' : undefined);
    const written = await writeGgufModel({ modelDir, outFile: file, ...(type ? { type } : {}), name: exportSourceName(o.source) });
    await writeFileAtomic(join(o.dir, MODELFILE), ollamaModelfileForModel({ modelFile: GGUF_MODEL_FILE, chatTemplate: written.chatTemplate }));
    o.log(`wrote the GGUF model (${written.architecture}, ${written.type}, ${countOf(written.tensors.length, 'tensor')}, ${countOf(written.tokens, 'token')}, pre-tokenizer ${written.pre}, ${(written.fileBytes / 2 ** 20).toFixed(1)} MiB) and an Ollama Modelfile`);
    const reloaded = join(o.scratch, 'reloaded');
    await ggufModelToFolder(file, o.folder.spec, modelDir, reloaded);
    const loss = (await lossOfModel(o.addon, await openModelFolder(reloaded), o.examples, o.threads)).loss;
    try {
      o.check('gguf-model', loss, Math.max(tolerance, LOSS_TOLERANCE['gguf-model'][written.type]));
    } catch (err) {
      // A full run's F32 weights rounded to 16 or 8 bits: small updates (a few steps at a low learning rate on a
      // 16-bit base) fall below the type's step, and the file loses part of what was trained. Not a fault: say so.
      if (!(err instanceof ExportCheckError) || o.source.kind !== 'full-run' || written.type === 'f32') throw err;
      throw new ExportCheckError(err.check, 'model', `${written.type} rounds every weight of the fine-tuned model (${ROUNDING[written.type]}), and that changes its loss more than the check allows: the run's updates to the weights are partly smaller than that rounding, so a ${written.type} file would lose part of what was trained. Export it with the GGUF type f32 (--gguf-type f32), which keeps the weights as they are`);
    }
    return written;
  } finally {
    await rm(o.scratch, { recursive: true, force: true });
  }
}

/** How each GGUF model type rounds a weight, for messages. */
const ROUNDING: Record<GgufModelType, string> = {
  f32: 'not at all',
  f16: 'to 11 significant bits',
  bf16: 'to 8 significant bits',
  q8_0: 'to 8-bit steps of each 32-value block',
};

/** What --gguf-base wrote and what its check measured. */
export interface GgufBaseSummary {
  type: GgufModelType;
  fileBytes: number;
  /** QLoRA only: the adapter was trained on the 4-bit base; what the 16-bit base.gguf changes (null otherwise) */
  qloraNote: string | null;
}

/**
 * gguf into `dir`: adapter.gguf, with `withBase` also base.gguf (the base
 * model converted as gguf-model converts it) and the Modelfile FROM it, so
 * the folder needs no Hugging Face folder and no Python converter. Both are
 * read back through our GGUF readers and scored: the adapter on the source's
 * base (as the source was scored), and base.gguf + adapter.gguf as llama.cpp
 * loads them. A QLoRA adapter's base.gguf is the 16-bit base: llama.cpp
 * applies the adapter to whatever base it loads, and there is no 4-bit NF4
 * type in GGUF. That pair is compared with the adapter on the same 16-bit
 * base (the conversion is what is checked), and the log says how far that is
 * from the 4-bit model it was trained as.
 */
async function exportGgufAdapter(o: {
  dir: string;
  scratch: string;
  folder: ModelFolder;
  source: AdapterExportSource;
  adapter: PeftLoraAdapter;
  type: GgufTensorType;
  /** write base.gguf, in this type (undefined: gguf-model's auto), or not at all (null) */
  base: { type: GgufModelType | undefined } | null;
  quantization: QuantizationOptions | null;
  examples: readonly Example[];
  /** the source adapter's loss as trained (QLoRA: on its 4-bit base) */
  sourceLoss: number;
  addon: NativeAddon;
  threads: number;
  log: (line: string) => void;
  check: (format: string, loss: number, tolerance: number, reference?: number) => void;
}): Promise<{ alpha: number; files: string[]; base: GgufBaseSummary | null }> {
  try {
    await makeFolder(o.dir);
    const file = join(o.dir, GGUF_ADAPTER_FILE);
    const content = await writeGgufLoraAdapter(file, {
      spec: o.folder.spec,
      lora: o.adapter.lora,
      tensors: o.adapter.tensors,
      type: o.type,
      name: exportSourceName(o.source),
    });
    let written: GgufModelSummary | null = null;
    if (o.base) {
      written = await writeGgufModel({ modelDir: o.folder.dir, outFile: join(o.dir, GGUF_BASE_FILE), ...(o.base.type ? { type: o.base.type } : {}), name: basename(o.folder.dir) });
      o.log(`wrote the base model as ${GGUF_BASE_FILE} (${written.architecture}, ${written.type}, ${countOf(written.tensors.length, 'tensor')}, pre-tokenizer ${written.pre}, ${(written.fileBytes / 2 ** 20).toFixed(1)} MiB)`);
    }
    await writeFileAtomic(join(o.dir, MODELFILE), ollamaModelfile({
      base: written ? { ggufFile: GGUF_BASE_FILE } : { dir: o.folder.dir },
      adapterFile: GGUF_ADAPTER_FILE,
      architecture: content.architecture,
    }));
    const rsNote = o.adapter.lora.rslora ? ` (rsLoRA: alpha ${o.adapter.lora.alpha} × sqrt(${o.adapter.lora.rank}), so llama.cpp's alpha / r equals alpha / sqrt(r))` : '';
    o.log(`wrote the GGUF adapter (${content.architecture}, ${o.type}, adapter.lora.alpha ${content.alpha}${rsNote}) and an Ollama Modelfile${written ? ` FROM ./${GGUF_BASE_FILE}` : ''}`);
    const reread = await readGgufLoraAdapter(file, o.folder.spec);
    o.check('gguf', (await lossWithLora(o.addon, o.folder, reread.lora, reread.tensors, o.examples, o.threads, o.quantization)).loss, LOSS_TOLERANCE.gguf[o.type]);
    if (!written) return { alpha: content.alpha, files: [GGUF_ADAPTER_FILE, MODELFILE], base: null };

    const reloaded = join(o.scratch, 'base');
    await ggufModelToFolder(join(o.dir, GGUF_BASE_FILE), o.folder.spec, o.folder.dir, reloaded);
    const loss = (await lossWithLora(o.addon, await openModelFolder(reloaded), reread.lora, reread.tensors, o.examples, o.threads, null)).loss;
    const tolerance = Math.max(LOSS_TOLERANCE.gguf[o.type], LOSS_TOLERANCE['gguf-model'][written.type]);
    let qloraNote: string | null = null;
    if (o.quantization) {
      // the reference of this pair: the adapter on the same base in 16 bits, as stored
      const reference = (await lossWithLora(o.addon, o.folder, o.adapter.lora, o.adapter.tensors, o.examples, o.threads, null)).loss;
      const trained = o.sourceLoss;
      qloraNote = `QLoRA: the adapter was trained on the 4-bit NF4 base; ${GGUF_BASE_FILE} holds the 16-bit base (GGUF has no NF4), so llama.cpp runs the adapter on weights slightly different from the trained ones: ` +
        `loss ${reference.toFixed(6)} on the 16-bit base vs ${trained.toFixed(6)} on the 4-bit base as trained (relative difference ${(Math.abs(reference - trained) / Math.max(Math.abs(trained), 1e-12)).toExponential(2)}). ` +
        `The gguf-base check compares ${GGUF_BASE_FILE} + ${GGUF_ADAPTER_FILE} with the adapter on the 16-bit base`;
      o.log(qloraNote);
      o.check('gguf-base', loss, tolerance, reference);
    } else {
      o.check('gguf-base', loss, tolerance);
    }
    return { alpha: content.alpha, files: [GGUF_ADAPTER_FILE, GGUF_BASE_FILE, MODELFILE], base: { type: written.type, fileBytes: written.fileBytes, qloraNote } };
  } finally {
    await rm(o.scratch, { recursive: true, force: true });
  }
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
  await checkExportDestination(out, inputs, options);

  // A full run's folder is the model; an adapter's base is the model it was trained on.
  const folder = await openModelFolder(source.modelDir);
  if (formats.includes('gguf-model') || options.ggufBase) await refuseGgufModelEarly(folder, options.ggufBase === true, log);
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
  const check = (format: string, loss: number, tolerance: number, reference = sourceLoss) => {
    const c = compareLoss(format, loss, reference, tolerance);
    log(`check ${format}: loss ${loss.toFixed(6)} vs ${reference === sourceLoss ? 'source' : 'reference'} ${reference.toFixed(6)} (relative difference ${c.relativeDifference.toExponential(2)}, tolerance ${tolerance}) ${c.passed ? 'ok' : 'FAILED'}`);
    checks.push(c);
    if (!c.passed) throw new ExportCheckError(c, adapter ? 'adapter' : 'model');
  };

  // A file-system error here names the temp folder beside `out`: reword it to name `out`.
  await writeFolderAtomic(out, async (temp) => {
    for (const format of formats) {
      const dir = formats.length === 1 ? temp : join(temp, format);
      const finalDir = formats.length === 1 ? out : join(out, format);
      if (format === 'gguf-model') {
        const written = await exportGgufModel({ dir, scratch: join(temp, '.gguf-model-work'), folder, source, adapterDir: adapterSource?.adapterDir ?? null, quantization, type: options.ggufType, examples, addon, threads, log, check });
        outputs.push({ format, dir: finalDir, files: [GGUF_MODEL_FILE, MODELFILE] });
        ggufModel = { type: written.type, architecture: written.architecture, pre: written.pre, fileBytes: written.fileBytes };
        continue;
      }
      if (!adapter || !adapterSource) throw new Error(`internal: format ${format} needs an adapter`);
      if (format === 'peft') {
        await writePeftAdapter({
          dir,
          spec: folder.spec,
          lora: adapter.lora,
          baseModelNameOrPath: adapter.baseModelNameOrPath ?? source.modelDir,
          tensors: adapter.tensors,
        });
        outputs.push({ format, dir: finalDir, files: ['adapter_config.json', 'adapter_model.safetensors', 'README.md'] });
        log(`wrote the PEFT adapter`);
        // Read back with the same reader any import uses: config, names, shapes.
        const reread = await readPeftAdapter(dir, folder.spec);
        check('peft', (await lossWithLora(addon, folder, reread.lora, reread.tensors, examples, threads, quantization)).loss, LOSS_TOLERANCE.peft);
      } else if (format === 'merged') {
        // The same base the source was scored on: a QLoRA adapter goes into the dequantized 4-bit weights.
        const summary = await mergeAdapter(folder.dir, adapterSource.adapterDir, dir, { addon, threads, quantization });
        outputs.push({ format, dir: finalDir, files: summary.files });
        log(`merged ${countOf(summary.mergedTensors, 'weight')} (scaling ${summary.scaling})`);
        const merged = await openModelFolder(dir);
        const tolerance = LOSS_TOLERANCE.merged[merged.storedDType] ?? LOSS_TOLERANCE.merged.BF16;
        check('merged', (await lossOfModel(addon, merged, examples, threads)).loss, tolerance);
      } else {
        const written = await exportGgufAdapter({
          dir, scratch: join(temp, '.gguf-base-work'), folder, source: adapterSource, adapter, type: ggufType,
          base: options.ggufBase ? { type: options.ggufType } : null,
          quantization, examples, sourceLoss, addon, threads, log, check,
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
