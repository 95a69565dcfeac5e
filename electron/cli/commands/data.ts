// `peft-studio data inspect FILE --model DIR`: how a dataset file will be
// trained, without training: the report (format, rows used and skipped with
// line numbers and reasons, token lengths, truncations, packing, trained
// tokens) as JSON on stdout, and with --row N the mask preview of row N
// (its tokens and which are trained). Skipped rows are also summarised on
// stderr. Only the tokenizer (and config.json's vocab_size) is read, not the
// weights.
import { DATASET_PATH_KINDS } from '../../data/containers/file-types.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, type CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { loadDataset } from '../../data/load-dataset.js';
import { DATASET_FORMATS, DATASET_ROLES, type DatasetFormatOption, type DatasetOptions } from '../../data/options.js';
import { previewRow } from '../../data/preview.js';
import { formatProblem } from '../../data/problems.js';
import type { ModelSpec } from '../../engine/native.js';
import { readModelConfig } from '../../models/config.js';
import { ModelTokenizer } from '../../models/tokenizer.js';
import { checkSeqLenFits, TRAIN_DEFAULTS } from '../../training/config.js';
import { countOf } from '../../text/plural.js';

/** Skipped rows listed on stderr. */
const WARN_ROWS = 5;

export const dataSpec: CommandSpec = {
  name: 'data',
  summary: 'Inspect a dataset: `data inspect FILE --model DIR` prints its report (and a row\'s mask preview).',
  positionals: [
    { name: 'action', help: 'inspect' },
    { name: 'file', help: `dataset: ${DATASET_PATH_KINDS}; or org/name of a dataset in the Hugging Face cache` },
  ],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'model folder whose tokenizer (and chat template) to use, or org/name of a model in the Hugging Face cache' },
    { name: 'format', kind: 'string', valueName: 'FORMAT', choices: DATASET_FORMATS, help: 'row format', defaultText: 'auto (from the fields)' },
    { name: 'seq-len', kind: 'int', min: 2, help: 'truncate (or pack) to this many tokens', defaultText: `${TRAIN_DEFAULTS.seqLen}, or what the model's positions allow` },
    { name: 'pack', kind: 'boolean', help: 'pack several examples into each sequence' },
    { name: 'all-tokens', kind: 'boolean', help: 'train on every token, not only completions / assistant turns' },
    { name: 'row', kind: 'int', min: 1, help: 'also print the mask preview of row N (1-based, in file order)' },
    { name: 'role', kind: 'string', valueName: 'ROLE', choices: DATASET_ROLES, help: 'for a folder split by name (a Hugging Face dataset): train reads its train split, eval its validation split (else its test split)', defaultText: 'train' },
  ],
  notes: [
    'Prints the report as JSON; with --row N prints {"report": ..., "preview": ...}.',
    'Formats: alpaca (instruction, input, output, system), chat (messages | conversations), completion (prompt, completion), text, tokenized (input_ids, labels).',
  ],
};

/** The model's spec from config.json, when the folder has one (a tokenizer-only folder has none). */
async function modelSpecOf(dir: string): Promise<ModelSpec | null> {
  const file = join(dir, 'config.json');
  return existsSync(file) ? (await readModelConfig(file)).spec : null;
}

/**
 * --seq-len as `train` uses it: the default shrinks to the model's
 * max_position_embeddings when that is smaller; an explicit value beyond it
 * is an error naming the flag.
 */
function seqLenFor(explicit: number | undefined, spec: ModelSpec | null): number {
  if (explicit !== undefined) {
    if (spec) checkSeqLenFits(explicit, spec);
    return explicit;
  }
  return spec ? Math.max(2, Math.min(TRAIN_DEFAULTS.seqLen, spec.maxPositionEmbeddings)) : TRAIN_DEFAULTS.seqLen;
}

export const dataCommand: Command = {
  spec: dataSpec,
  async run(args, io) {
    const [action, file] = args.positionals;
    if (action !== 'inspect') throw new UsageError(`unknown data action '${action}'; the only one is 'inspect' (peft-studio data inspect FILE --model DIR)`, 'data');
    const model = args.requireString('model');
    if (!existsSync(model)) throw new Error(`model folder ${model} does not exist`);
    const tokenizer = await ModelTokenizer.load(model);
    const spec = await modelSpecOf(model);
    const options: DatasetOptions = {
      format: (args.string('format') ?? 'auto') as DatasetFormatOption,
      seqLen: seqLenFor(args.number('seq-len'), spec),
      completionOnly: !args.boolean('all-tokens'),
      pack: args.boolean('pack'),
      vocabSize: spec?.vocabSize ?? tokenizer.vocabSize,
      role: (args.string('role') ?? 'train') as DatasetOptions['role'],
    };
    const { report } = await loadDataset(file, tokenizer, options);
    for (const notice of report.notices.filter((n) => !/ of \d+ rows? skipped; first: /.test(n))) io.stderr(`note: ${notice}\n`);
    if (report.skipped.length > 0) {
      io.stderr(`warning: ${report.rows.skipped} of ${countOf(report.rows.total, 'row')} skipped:\n`);
      for (const p of report.skipped.slice(0, WARN_ROWS)) io.stderr(`  ${formatProblem(p)}\n`);
      if (report.skipped.length > WARN_ROWS) io.stderr(`  ... and ${report.skipped.length - WARN_ROWS} more (see "skipped" in the report)\n`);
    }
    const row = args.number('row');
    if (row === undefined) {
      io.stdout(JSON.stringify(report, null, 2) + '\n');
      return;
    }
    const preview = await previewRow(file, row, tokenizer, options);
    io.stdout(JSON.stringify({ report, preview }, null, 2) + '\n');
  },
};
