// `peft-studio generate`: continue a prompt with the model (optionally with a
// PEFT adapter: LoRA, prompt or prefix tuning), using the KV cache. Prints only the generated text.
import { availableParallelism } from 'node:os';
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { QUANT_FLAGS, quantizationFromArgs } from '../quant-flags.js';
import { DEVICE_FLAG, deviceFromArgs } from '../device-flag.js';
import { PRECISION_FLAG, precisionFromArgs } from '../precision-flag.js';
import { generate } from '../../inference/generate.js';
import { explainNonFiniteOutput, NonFiniteOutputError } from '../../inference/non-finite-output.js';
import { readGenerationConfig } from '../../models/generation-config.js';
import { openSession, stopTokenIds, virtualTokensOf } from '../../session.js';

export const generateSpec: CommandSpec = {
  name: 'generate',
  summary: 'Generate a continuation of a prompt (temperature 0 = greedy).',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder' },
    { name: 'adapter', kind: 'string', valueName: 'DIR', help: 'PEFT adapter folder to apply (LoRA, prompt tuning or prefix tuning, by its peft_type)' },
    { name: 'prompt', kind: 'string', valueName: 'TEXT', help: 'the text to continue (special tokens added as the tokenizer does)' },
    { name: 'max-new-tokens', kind: 'int', min: 1, help: 'most tokens to generate', defaultText: '128 (fewer if the model has no room)' },
    { name: 'temperature', kind: 'number', min: 0, help: 'sampling temperature; 0 = greedy', defaultText: "generation_config.json's, else 0" },
    { name: 'top-p', kind: 'number', above: 0, max: 1, help: 'nucleus sampling threshold', defaultText: "generation_config.json's, else 1" },
    { name: 'seed', kind: 'int', min: 0, help: 'sampling seed', defaultText: '42' },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'all cores' },
    DEVICE_FLAG,
    PRECISION_FLAG,
    ...QUANT_FLAGS,
  ],
  notes: ['Generation stops at an end-of-sequence token (generation_config.json / config.json) or after --max-new-tokens.'],
};

const DEFAULT_MAX_NEW_TOKENS = 128;

export const generateCommand: Command = {
  spec: generateSpec,
  async run(args, io) {
    const model = args.requireString('model');
    const prompt = args.requireString('prompt');
    const session = await openSession(model, { threads: args.number('threads') ?? availableParallelism(), adapter: args.string('adapter') ?? null, quantization: quantizationFromArgs(args), device: deviceFromArgs(args), precision: precisionFromArgs(args), purpose: 'generate' });
    for (const notice of session.notices) io.stderr(`note: ${notice}\n`);
    if (session.placement) io.stderr(`note: ${session.placement}\n`);
    try {
      const defaults = (await readGenerationConfig(session.folder.dir)) ?? { temperature: 0, topP: 1 };
      const promptIds = session.tokenizer.encode(prompt);
      // Virtual tokens (prompt / prefix tuning) take the first positions of the cache.
      const positions = session.folder.spec.maxPositionEmbeddings - virtualTokensOf(session.adapter);
      const room = positions - promptIds.length;
      const result = await generate(session.engine, promptIds, {
        vocabSize: session.folder.spec.vocabSize,
        // An explicit --max-new-tokens that does not fit is an error; the default shrinks to fit.
        maxNewTokens: args.number('max-new-tokens') ?? Math.max(1, Math.min(DEFAULT_MAX_NEW_TOKENS, room)),
        temperature: args.number('temperature') ?? defaults.temperature,
        topP: args.number('top-p') ?? defaults.topP,
        seed: args.number('seed') ?? 42,
        stopTokenIds: await stopTokenIds(session.folder, session.tokenizer),
        maxPositions: positions,
      }).catch(async (e: unknown) => {
        if (!(e instanceof NonFiniteOutputError)) throw e;
        throw new Error(await explainNonFiniteOutput(session.engine, e.what, { model, adapter: args.string('adapter') ?? null }));
      });
      io.stdout(session.tokenizer.decode(result.tokens, { skipSpecialTokens: true }) + '\n');
    } finally {
      session.dispose();
    }
  },
};
