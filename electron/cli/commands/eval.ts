// `peft-studio eval`: mean cross-entropy and perplexity of a model (with an
// optional PEFT adapter: LoRA, prompt or prefix tuning) over a dataset in any
// format train reads (the same loader and masking), as one JSON object on stdout.
import { DATASET_PATH_KINDS } from '../../data/containers/file-types.js';
import { defaultThreads } from '../../system/machine.js';
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { BASE_QUANT_FLAGS, quantizationFromArgs } from '../quant-flags.js';
import { DEVICE_FLAG, deviceFromArgs } from '../device-flag.js';
import { PRECISION_FLAG, precisionFromArgs } from '../precision-flag.js';
import { evaluateExamples } from '../../inference/eval.js';
import { explainNonFiniteOutput } from '../../inference/non-finite-output.js';
import { openSession, virtualTokensOf } from '../../session.js';
import { checkSeqLenFits, TRAIN_DEFAULTS } from '../../training/config.js';
import { DATASET_FORMATS, DATASET_ROLES, loadDataset, type DatasetFormatOption, type DatasetRole } from '../../data/index.js';

export const evalSpec: CommandSpec = {
  name: 'eval',
  summary: 'Score a model (optionally with an adapter) on a dataset: loss, perplexity, tokens.',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder, or org/name of a model in the Hugging Face cache' },
    { name: 'adapter', kind: 'string', valueName: 'DIR', help: 'PEFT adapter folder to apply (LoRA, prompt tuning or prefix tuning, by its peft_type)' },
    { name: 'data', kind: 'string', valueName: 'DATASET', help: `dataset, as for train: ${DATASET_PATH_KINDS}; or org/name of a dataset in the Hugging Face cache` },
    { name: 'role', kind: 'string', valueName: 'ROLE', choices: DATASET_ROLES, help: 'for a folder split by name (a Hugging Face dataset): train reads its train split, eval its validation split (else its test split)', defaultText: 'eval' },
    { name: 'format', kind: 'string', choices: DATASET_FORMATS, help: 'row format', defaultText: 'auto (from the fields)' },
    { name: 'all-tokens', kind: 'boolean', help: 'score every token, not only completions / assistant turns' },
    { name: 'seq-len', kind: 'int', min: 2, help: 'truncate examples to this many tokens', defaultText: `${TRAIN_DEFAULTS.seqLen}, or fewer: the model's positions less an adapter's virtual tokens` },
    { name: 'batch-size', kind: 'int', min: 1, help: 'examples per forward pass', defaultText: String(TRAIN_DEFAULTS.batchSize) },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'the CPUs this process may use' },
    DEVICE_FLAG,
    PRECISION_FLAG,
    ...BASE_QUANT_FLAGS,
  ],
  notes: ['Prints {"loss": mean cross-entropy per label token (nats), "perplexity": exp(loss), "tokens": label tokens scored}.'],
};

export const evalCommand: Command = {
  spec: evalSpec,
  async run(args, io) {
    const model = args.requireString('model');
    const data = args.requireString('data');
    const session = await openSession(model, { threads: args.number('threads') ?? defaultThreads(), adapter: args.string('adapter') ?? null, quantization: quantizationFromArgs(args), device: deviceFromArgs(args), precision: precisionFromArgs(args), purpose: 'evaluate' });
    for (const notice of session.notices) io.stderr(`note: ${notice}\n`);
    if (session.placement) io.stderr(`note: ${session.placement}\n`);
    try {
      const virtual = virtualTokensOf(session.adapter);
      // An explicit --seq-len that does not fit is an error; the default shrinks to fit the virtual tokens.
      const seqLen = args.number('seq-len') ?? Math.min(TRAIN_DEFAULTS.seqLen, session.folder.spec.maxPositionEmbeddings - virtual);
      checkSeqLenFits(seqLen, session.folder.spec, virtual, `${args.string('adapter')}'s num_virtual_tokens`);
      const { examples, report } = await loadDataset(data, session.tokenizer, {
        format: (args.string('format') ?? 'auto') as DatasetFormatOption,
        seqLen,
        completionOnly: !args.boolean('all-tokens'),
        pack: false,
        vocabSize: session.folder.spec.vocabSize,
        role: (args.string('role') ?? 'eval') as DatasetRole,
      });
      for (const notice of report.notices) io.stderr(`note: ${notice}\n`);
      const result = await evaluateExamples(session.engine, examples, args.number('batch-size') ?? TRAIN_DEFAULTS.batchSize);
      // A NaN loss is an error with its reason (the damaged tensors), not {"loss": null} and exit 0.
      if (!Number.isFinite(result.loss)) {
        throw new Error(await explainNonFiniteOutput(session.engine, `the evaluation loss on ${data}`, { model, adapter: args.string('adapter') ?? null }));
      }
      io.stdout(JSON.stringify(result) + '\n');
    } finally {
      session.dispose();
    }
  },
};
