// `export`: a LoRA adapter (from a training run or an adapter folder) written
// as a PEFT folder, a merged Hugging Face model and/or a GGUF adapter for
// llama.cpp and Ollama. Every format is written into one temp folder beside
// the target, read back with the project's own loaders and scored against
// the source adapter; only when every check passes is the folder moved into
// place, so a failure leaves nothing behind and an existing target is only
// replaced with `overwrite`.
import { mkdir, readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { readPeftAdapter, writePeftAdapter, type PeftLoraAdapter } from '../adapters/peft.js';
import { loadAddon } from '../engine/load.js';
import type { NativeAddon } from '../engine/native.js';
import { FolderExistsError, writeFileAtomic, writeFolderAtomic } from '../files/atomic.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { TRAIN_DEFAULTS } from '../training/config.js';
import type { Example } from '../training/data.js';
import { DATASET_FORMATS, type DatasetFormatOption } from '../data/index.js';
import { readGgufLoraAdapter, writeGgufLoraAdapter, type GgufTensorType } from './gguf-lora.js';
import { mergeAdapter } from './merge.js';
import { ollamaModelfile } from './modelfile.js';
import { resolveExportSource, type ExportSource } from './source.js';
import {
  compareLoss,
  DEFAULT_CHECK_ROWS,
  ExportCheckError,
  loadCheckRows,
  LOSS_TOLERANCE,
  lossOfModel,
  lossWithLora,
  type LossCheck,
} from './verify.js';

export const EXPORT_FORMATS = ['peft', 'merged', 'gguf'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const GGUF_ADAPTER_FILE = 'adapter.gguf';
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
  /** GGUF tensor type (default f32) */
  ggufType?: GgufTensorType;
  /** JSONL rows for the reload check; default: the run's data */
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

export type ExportCheckSummary =
  | { skipped: string }
  | { data: string; rows: number; tokens: number; sourceLoss: number; checks: LossCheck[] };

export interface ExportResult {
  out: string;
  source: ExportSource;
  outputs: ExportOutput[];
  check: ExportCheckSummary;
  /** GGUF only: the adapter.lora.alpha written (alpha * sqrt(r) for rsLoRA) */
  ggufAlpha?: number;
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

/** Why an adapter that is not LoRA cannot be exported to the first of these formats. */
function notLoraMessage(source: ExportSource, formats: readonly ExportFormat[]): string {
  const what = `${source.adapterDir}: is a ${source.peftType} adapter`;
  if (formats.includes('gguf')) {
    return `${what}; a GGUF adapter holds LoRA factors only (adapter.type "lora"), and llama.cpp and Ollama cannot load virtual-token (prompt or prefix tuning) adapters. Use it with PEFT as it is`;
  }
  if (formats.includes('merged')) return `${what}; it adds virtual tokens instead of weight updates, so there is nothing to merge into the base weights`;
  return `${what}; export handles LoRA adapters only, and this folder already is in the PEFT format: copy it as it is`;
}

async function isNonEmptyFolder(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

async function checkRowsFor(options: ExportOptions, source: ExportSource, folder: ModelFolder): Promise<{ examples: Example[]; file: string } | { skipped: string }> {
  const rows = options.checkRows ?? DEFAULT_CHECK_ROWS;
  const seqLen = Math.min(source.runSeqLen ?? TRAIN_DEFAULTS.seqLen, folder.spec.maxPositionEmbeddings);
  const tokenizer = folder.hasTokenizer ? await ModelTokenizer.load(folder.dir) : null;
  const noTokenizer = `${folder.dir} has no tokenizer.json, which reading data rows needs`;
  if (options.checkData) {
    const file = resolve(options.checkData);
    if (!tokenizer) throw new ExportError(`--check-data: ${noTokenizer}; add the tokenizer files to the model folder`);
    return { examples: await loadCheckRows(file, tokenizer, { seqLen, vocabSize: folder.spec.vocabSize, rows }), file };
  }
  if (source.runData === null) return { skipped: 'no rows to score: an adapter folder names no data; pass --check-data FILE to check the export' };
  if (!tokenizer) return { skipped: `${noTokenizer}` };
  try {
    const format = (DATASET_FORMATS as readonly string[]).includes(source.runDataFormat ?? '') ? (source.runDataFormat as DatasetFormatOption) : 'auto';
    const examples = await loadCheckRows(source.runData, tokenizer, { seqLen, vocabSize: folder.spec.vocabSize, rows, format, completionOnly: source.runCompletionOnly ?? true });
    return { examples, file: source.runData };
  } catch (err) {
    return { skipped: `the run's data could not be used (${(err as Error).message}); pass --check-data FILE to check the export` };
  }
}

export async function exportAdapter(options: ExportOptions): Promise<ExportResult> {
  const log = options.log ?? (() => {});
  const formats = [...new Set(options.formats)];
  if (formats.length === 0) throw new ExportError(`no export format given; use ${EXPORT_FORMATS.join(', ')}`);
  const ggufType = options.ggufType ?? 'f32';
  const source = await resolveExportSource(options.source, options.model ?? null);
  if (source.peftType !== 'LORA') throw new ExportError(notLoraMessage(source, formats));
  const out = resolve(options.out);
  if (out === source.dir || out === source.modelDir) throw new ExportError(`${out}: is the export's own source; choose another --out folder`);
  // Refuse before any work; writeFolderAtomic checks again when it moves the result in.
  if (!options.overwrite && (await isNonEmptyFolder(out))) throw new FolderExistsError(out, options.howToOverwrite);

  const folder = await openModelFolder(source.modelDir);
  const adapter: PeftLoraAdapter = await readPeftAdapter(source.adapterDir, folder.spec);
  const addon = options.addon ?? loadAddon();
  const threads = options.threads;

  const rows = await checkRowsFor(options, source, folder);
  let sourceLoss: number | null = null;
  let tokens = 0;
  if ('examples' in rows) {
    const r = await lossWithLora(addon, folder, adapter.lora, adapter.tensors, rows.examples, threads);
    sourceLoss = r.loss;
    tokens = r.tokens;
    log(`source adapter: loss ${r.loss.toFixed(6)} on ${rows.examples.length} row(s), ${r.tokens} token(s) of ${rows.file}`);
  } else {
    log(`reload check skipped: ${rows.skipped}`);
  }

  const outputs: ExportOutput[] = [];
  const checks: LossCheck[] = [];
  let ggufAlpha: number | undefined;
  const check = (format: string, loss: number, tolerance: number) => {
    const c = compareLoss(format, loss, sourceLoss!, tolerance);
    log(`check ${format}: loss ${loss.toFixed(6)} vs source ${sourceLoss!.toFixed(6)} (relative difference ${c.relativeDifference.toExponential(2)}, tolerance ${tolerance}) ${c.passed ? 'ok' : 'FAILED'}`);
    checks.push(c);
    if (!c.passed) throw new ExportCheckError(c);
  };
  const examples = 'examples' in rows ? rows.examples : null;

  await writeFolderAtomic(out, async (temp) => {
    for (const format of formats) {
      const dir = formats.length === 1 ? temp : join(temp, format);
      const finalDir = formats.length === 1 ? out : join(out, format);
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
        if (examples) check('peft', (await lossWithLora(addon, folder, reread.lora, reread.tensors, examples, threads)).loss, LOSS_TOLERANCE.peft);
      } else if (format === 'merged') {
        const summary = await mergeAdapter(folder.dir, source.adapterDir, dir, { addon, threads });
        outputs.push({ format, dir: finalDir, files: summary.files });
        log(`merged ${summary.mergedTensors} weight(s) (scaling ${summary.scaling})`);
        const merged = await openModelFolder(dir);
        if (examples) {
          const tolerance = LOSS_TOLERANCE.merged[merged.storedDType] ?? LOSS_TOLERANCE.merged.BF16;
          check('merged', (await lossOfModel(addon, merged, examples, threads)).loss, tolerance);
        }
      } else {
        await mkdir(dir, { recursive: true });
        const file = join(dir, GGUF_ADAPTER_FILE);
        const content = await writeGgufLoraAdapter(file, {
          spec: folder.spec,
          lora: adapter.lora,
          tensors: adapter.tensors,
          type: ggufType,
          name: basename(source.dir),
        });
        ggufAlpha = content.alpha;
        await writeFileAtomic(join(dir, MODELFILE), ollamaModelfile({ baseModelDir: folder.dir, adapterFile: GGUF_ADAPTER_FILE, architecture: content.architecture }));
        outputs.push({ format, dir: finalDir, files: [GGUF_ADAPTER_FILE, MODELFILE] });
        const rsNote = adapter.lora.rslora ? ` (rsLoRA: alpha ${adapter.lora.alpha} × sqrt(${adapter.lora.rank}), so llama.cpp's alpha / r equals alpha / sqrt(r))` : '';
        log(`wrote the GGUF adapter (${content.architecture}, ${ggufType}, adapter.lora.alpha ${content.alpha}${rsNote}) and an Ollama Modelfile`);
        const reread = await readGgufLoraAdapter(file, folder.spec);
        if (examples) check(`gguf`, (await lossWithLora(addon, folder, reread.lora, reread.tensors, examples, threads)).loss, LOSS_TOLERANCE.gguf[ggufType]);
      }
    }
  }, { overwrite: options.overwrite, howToOverwrite: options.howToOverwrite });

  const summary: ExportCheckSummary = 'examples' in rows
    ? { data: rows.file, rows: rows.examples.length, tokens, sourceLoss: sourceLoss!, checks }
    : { skipped: rows.skipped };
  return { out, source, outputs, check: summary, ...(ggufAlpha === undefined ? {} : { ggufAlpha }) };
}
