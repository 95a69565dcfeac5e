// exportAdapter: a run's (or an adapter folder's) LoRA as PEFT, merged and /
// or GGUF, through electron/export (every format read back and checked). Its
// progress lines are pushed to the UIs as {type: 'exportLog', out, line}.
import { availableParallelism } from 'node:os';
import type { ApiEvent, ExportRequest, ExportResult } from '../api/contract.js';
import { exportAdapter } from '../export/export.js';
import { resolveExportSource } from '../export/source.js';
import { exportInAppWords } from './app-wording.js';
import type { PathPolicy } from './paths.js';

export async function exportWithLog(req: ExportRequest, policy: PathPolicy, emit: (e: ApiEvent) => void): Promise<ExportResult> {
  // the base model the run or adapter names must be usable too
  const source = await resolveExportSource(req.source);
  policy.check(source.modelDir, 'source');
  try {
    return await exportAdapter({
      source: req.source,
      formats: req.formats,
      out: req.out,
      overwrite: false,
      howToOverwrite: 'empty it',
      threads: availableParallelism(),
      log: (line) => emit({ type: 'exportLog', out: req.out, line }),
    });
  } catch (e) {
    if (e instanceof Error) e.message = exportInAppWords(e.message);
    throw e;
  }
}
