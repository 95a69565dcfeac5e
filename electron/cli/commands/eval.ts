// `peft-studio eval`: mean cross-entropy and perplexity of a model (with an
// optional LoRA adapter) over a JSONL file, as one JSON object on stdout.
import { availableParallelism } from 'node:os';
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { evaluateExamples } from '../../inference/eval.js';
import { openSession } from '../../session.js';
import { checkSeqLenFits, TRAIN_DEFAULTS } from '../../training/config.js';
import { loadJsonl } from '../../training/data.js';

export const evalSpec: CommandSpec = {
  name: 'eval',
  summary: 'Score a model (optionally with an adapter) on a JSONL file: loss, perplexity, tokens.',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder' },
    { name: 'adapter', kind: 'string', valueName: 'DIR', help: 'PEFT LoRA adapter folder to apply' },
    { name: 'data', kind: 'string', valueName: 'FILE', help: 'JSONL rows, as for train' },
    { name: 'seq-len', kind: 'int', min: 2, help: 'truncate examples to this many tokens', defaultText: String(TRAIN_DEFAULTS.seqLen) },
    { name: 'batch-size', kind: 'int', min: 1, help: 'examples per forward pass', defaultText: String(TRAIN_DEFAULTS.batchSize) },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'all cores' },
  ],
  notes: ['Prints {"loss": mean cross-entropy per label token (nats), "perplexity": exp(loss), "tokens": label tokens scored}.'],
};

export const evalCommand: Command = {
  spec: evalSpec,
  async run(args, io) {
    const model = args.requireString('model');
    const data = args.requireString('data');
    const seqLen = args.number('seq-len') ?? TRAIN_DEFAULTS.seqLen;
    const session = await openSession(model, { threads: args.number('threads') ?? availableParallelism(), adapter: args.string('adapter') ?? null });
    try {
      checkSeqLenFits(seqLen, session.folder.spec);
      const examples = loadJsonl(data, session.tokenizer, { seqLen, vocabSize: session.folder.spec.vocabSize });
      const result = await evaluateExamples(session.engine, examples, args.number('batch-size') ?? TRAIN_DEFAULTS.batchSize);
      io.stdout(JSON.stringify(result) + '\n');
    } finally {
      session.dispose();
    }
  },
};
