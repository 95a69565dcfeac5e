// `peft-studio demo`: fine-tune the bundled demo model on its question task
// and show what changed: task accuracy, eval loss, sample answers and the
// base-corpus perplexity (the forgetting check), before and after.
import { defaultThreads } from '../../system/machine.js';
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { bundledDemoFiles } from '../../demo/paths.js';
import { formatReport } from '../../demo/report.js';
import { DEMO_TRAINING, runDemo, type DemoMethod } from '../../demo/run-demo.js';

export const demoSpec: CommandSpec = {
  name: 'demo',
  summary: 'Fine-tune the bundled demo model and show accuracy, loss, answers and forgetting before and after.',
  positionals: [],
  flags: [
    { name: 'out', kind: 'string', valueName: 'DIR', help: 'new folder for the run, adapter and demo.json (must not exist)', defaultText: './peft-studio-demo-<time>' },
    { name: 'method', kind: 'string', choices: ['lora', 'dora', 'full'], help: 'what to train (dora: LoRA\'s settings with DoRA)', defaultText: 'lora' },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'the CPUs this process may use' },
    { name: 'steps', kind: 'int', min: 1, help: 'optimizer steps', defaultText: String(DEMO_TRAINING.lora.steps) },
    { name: 'no-replay', kind: 'boolean', help: 'train on the questions alone, without the replay documents (shows the forgetting they prevent)' },
  ],
  notes: [
    'The base model (resources/demo/model) was pretrained by this project on a generated corpus about a small',
    'world; the task asks about its facts in a question/answer format it has never seen. Held-out questions',
    'are about facts no training question mentions, so answering them needs what pretraining taught.',
    'The fine-tuning rows mix the questions with fresh documents like the pretraining ones (rehearsal),',
    'the usual guard against forgetting; --no-replay leaves them out.',
  ],
};

export const demoCommand: Command = {
  spec: demoSpec,
  async run(args, io) {
    const report = await runDemo(
      {
        files: bundledDemoFiles(),
        out: args.string('out') ?? null,
        method: (args.string('method') ?? 'lora') as DemoMethod,
        threads: args.number('threads') ?? defaultThreads(),
        steps: args.number('steps'),
        replay: !args.boolean('no-replay'),
      },
      io,
    );
    io.stdout(formatReport(report));
  },
};
