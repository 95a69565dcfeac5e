// exportAdapter: a run's (or an adapter folder's) LoRA as PEFT, merged and /
// or GGUF, or a full fine-tuning run's model (or a checkpoint of it) as one
// GGUF model, through electron/export (every format read back and checked).
// Its progress lines are pushed to the UIs as {type: 'exportLog', out, line}.
import { defaultThreads } from '../system/machine.js';
import type { ApiEvent, ExportRequest, ExportResult } from '../api/contract.js';
import { GGUF_ADAPTER_TYPES, exportAdapter } from '../export/export.js';
import { resolveExportSource } from '../export/source.js';
import { exportInAppWords } from './app-wording.js';
import { invalid } from './errors.js';
import type { PathPolicy } from './paths.js';

/** The request's fields that only make sense together, refused naming the field (before any work). */
function checkGgufFields(req: ExportRequest): void {
  if (req.ggufType !== undefined && req.formats.includes('gguf') && !(GGUF_ADAPTER_TYPES as readonly string[]).includes(req.ggufType)) {
    throw invalid('ggufType', `ggufType ${req.ggufType}: the GGUF adapter (format gguf) is written as f32 or f16 only, the types llama.cpp applies adapters in; ${req.ggufType} is for the GGUF model (format gguf-model)`);
  }
  if (req.ggufType !== undefined && !req.formats.includes('gguf') && !req.formats.includes('gguf-model')) {
    throw invalid('ggufType', `ggufType is the tensor type of a GGUF export: choose the format gguf or gguf-model, or leave it out`);
  }
  if (req.ggufBase && !req.formats.includes('gguf')) {
    throw invalid('ggufBase', `ggufBase writes base.gguf beside the GGUF adapter: it needs the format gguf`);
  }
}

export async function exportWithLog(req: ExportRequest, policy: PathPolicy, emit: (e: ApiEvent) => void): Promise<ExportResult> {
  checkGgufFields(req);
  // the base model the run or adapter names must be usable too (a full run's model is its own folder)
  const source = await resolveExportSource(req.source, null, req.formats);
  policy.check(source.modelDir, 'source');
  try {
    return await exportAdapter({
      source: req.source,
      formats: req.formats,
      out: req.out,
      overwrite: false,
      howToOverwrite: 'empty it',
      ...(req.ggufType === undefined ? {} : { ggufType: req.ggufType }),
      ...(req.ggufBase ? { ggufBase: true } : {}),
      threads: defaultThreads(),
      log: (line) => emit({ type: 'exportLog', out: req.out, line }),
    });
  } catch (e) {
    if (e instanceof Error) e.message = exportInAppWords(e.message);
    throw e;
  }
}
