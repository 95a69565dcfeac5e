// inspectData / previewRow: the dataset report and one row's mask preview,
// through electron/data exactly as `data inspect` and training read the file.
// Only the tokenizer and config.json are read, not the weights. The sequence
// length defaults to what `train` would use on this model.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DataRequest, DatasetReport, PreviewRowRequest, RowPreview } from '../api/contract.js';
import { loadDataset, previewRow, type DatasetOptions } from '../data/index.js';
import type { ModelSpec } from '../engine/native.js';
import { readModelConfig } from '../models/config.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { checkSeqLenFits, TRAIN_DEFAULTS } from '../training/config.js';
import { defaultSeqLenFor } from '../training/settings.js';
import { failed, invalid } from './errors.js';

async function modelSpecOf(dir: string): Promise<ModelSpec | null> {
  const file = join(dir, 'config.json');
  return existsSync(file) ? (await readModelConfig(file)).spec : null;
}

async function prepare(req: DataRequest): Promise<{ tokenizer: ModelTokenizer; options: DatasetOptions }> {
  if (!existsSync(req.model)) throw failed(`model folder ${req.model} does not exist`);
  if (!existsSync(req.data)) throw failed(`dataset file ${req.data} does not exist`);
  const tokenizer = await ModelTokenizer.load(req.model);
  const spec = await modelSpecOf(req.model);
  let seqLen = spec ? defaultSeqLenFor(spec) : TRAIN_DEFAULTS.seqLen;
  if (req.seqLen !== undefined) {
    try {
      if (spec) checkSeqLenFits(req.seqLen, spec);
    } catch (e) {
      throw invalid('seqLen', (e as Error).message.replace(/--seq-len/g, 'seqLen'));
    }
    seqLen = req.seqLen;
  }
  return {
    tokenizer,
    options: {
      format: req.format ?? 'auto',
      seqLen,
      completionOnly: req.completionOnly ?? true,
      pack: req.pack ?? false,
      vocabSize: spec?.vocabSize ?? tokenizer.vocabSize,
      role: req.role ?? 'train',
    },
  };
}

export async function inspectData(req: DataRequest): Promise<DatasetReport> {
  const { tokenizer, options } = await prepare(req);
  return (await loadDataset(req.data, tokenizer, options)).report;
}

export async function previewDataRow(req: PreviewRowRequest): Promise<RowPreview> {
  const { tokenizer, options } = await prepare(req);
  return previewRow(req.data, req.row, tokenizer, options);
}
