// `peft-studio generate`: continue a prompt with the model (optionally with a
// PEFT adapter: LoRA, prompt or prefix tuning), using the KV cache. Prints only the generated text,
// as it is generated.
import { defaultThreads } from '../../system/machine.js';
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { BASE_QUANT_FLAGS, quantizationFromArgs } from '../quant-flags.js';
import { DEVICE_FLAG, deviceFromArgs } from '../device-flag.js';
import { PRECISION_FLAG, precisionFromArgs } from '../precision-flag.js';
import { generate } from '../../inference/generate.js';
import { answerDecoder, TextStream } from '../../inference/text-stream.js';
import { stopSignalAction } from '../stop-signal.js';
import { explainNonFiniteOutput, NonFiniteOutputError } from '../../inference/non-finite-output.js';
import { ignoredKeysNotice, readGenerationConfig } from '../../models/generation-config.js';
import { positionLimitProblem } from '../../inference/position-limit.js';
import { DEFAULT_SEED, resolveSampling, SAMPLED_ONLY, SAMPLING_KEYS, SAMPLING_LIMITS, samplingWords, type SamplingKey, type SamplingSettings } from '../../inference/sampling-settings.js';
import { openSession, stopTokenIds, virtualTokensOf } from '../../session.js';
import { layOutPrompt, PLAIN_TAKES_NO_SYSTEM, PROMPT_FORMATS, PromptFormatError, type PromptFormat } from '../../inference/prompt-format.js';
import { trainedPromptFormat } from '../../inference/trained-prompt-format.js';

export const generateSpec: CommandSpec = {
  name: 'generate',
  summary: 'Generate an answer to a prompt, laid out as the adapter was trained (temperature 0 = greedy).',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder, or org/name of a model in the Hugging Face cache' },
    { name: 'adapter', kind: 'string', valueName: 'DIR', help: 'PEFT adapter folder to apply (LoRA, prompt tuning or prefix tuning, by its peft_type)' },
    { name: 'prompt', kind: 'string', valueName: 'TEXT', help: 'the prompt (laid out as --prompt-format says)' },
    { name: 'prompt-format', kind: 'string', valueName: 'LAYOUT', choices: ['auto', ...PROMPT_FORMATS], help: "how the prompt is laid out: plain (the text as written, after BOS), chat (a user turn in the model's chat template, answered as the assistant), alpaca (the Alpaca prompt as alpaca-lora writes it, or the chat template when the model has one); auto: as the run of --adapter (or of a fine-tuned --model) laid out its training rows, else plain (chat with --system)", defaultText: 'auto' },
    { name: 'system', kind: 'string', valueName: 'TEXT', help: 'a system message (chat and alpaca layouts)' },
    { name: 'show-prompt', kind: 'boolean', help: 'print the prompt as the model is given it (layout, token count, text) to stderr first' },
    { name: 'max-new-tokens', kind: 'int', min: 1, help: 'most tokens to generate', defaultText: '128 (fewer if the model has no room)' },
    { name: 'temperature', ...SAMPLING_LIMITS.temperature, help: 'sampling temperature; 0 = greedy', defaultText: "generation_config.json's when its do_sample is true, else 0" },
    { name: 'top-k', ...SAMPLING_LIMITS.topK, help: 'when sampling, keep only the k most likely tokens; 0 = off', defaultText: "generation_config.json's top_k, else 50 (transformers' default)" },
    { name: 'top-p', ...SAMPLING_LIMITS.topP, help: 'when sampling, then keep the most likely tokens until their probability reaches this (nucleus); 1 = off', defaultText: "generation_config.json's top_p, else 1" },
    { name: 'min-p', ...SAMPLING_LIMITS.minP, help: "when sampling, then drop the tokens less likely than this times the most likely one (transformers' min_p, after the temperature); 0 = off", defaultText: "generation_config.json's min_p, else 0" },
    { name: 'typical-p', ...SAMPLING_LIMITS.typicalP, help: "when sampling, then keep the most typical tokens (surprisal nearest the entropy) until their probability reaches this (transformers' typical_p); 1 = off", defaultText: "generation_config.json's typical_p, else 1" },
    { name: 'epsilon-cutoff', ...SAMPLING_LIMITS.epsilonCutoff, help: "when sampling, then drop the tokens less likely than this, but the most likely (transformers' epsilon_cutoff; 3e-4 to 9e-4 in its paper); 0 = off", defaultText: "generation_config.json's epsilon_cutoff, else 0" },
    { name: 'eta-cutoff', ...SAMPLING_LIMITS.etaCutoff, help: "when sampling, then drop the tokens less likely than min(eta, sqrt(eta)·e^-entropy), but the most likely (transformers' eta_cutoff; 3e-4 to 2e-3 in its paper); 0 = off", defaultText: "generation_config.json's eta_cutoff, else 0" },
    { name: 'repetition-penalty', ...SAMPLING_LIMITS.repetitionPenalty, help: "transformers' repetition_penalty: every token already in the prompt or the answer is made less likely (a positive logit divided by it, a negative one multiplied), greedy or sampled; 1 = off", defaultText: "generation_config.json's repetition_penalty, else 1" },
    { name: 'no-repeat-ngram-size', ...SAMPLING_LIMITS.noRepeatNgramSize, valueName: 'N', help: "transformers' no_repeat_ngram_size: no N tokens in a row may occur twice in the prompt and the answer (the token that would repeat them is never chosen), greedy or sampled; 0 = off", defaultText: "generation_config.json's no_repeat_ngram_size, else 0" },
    { name: 'seed', kind: 'int', min: 0, help: "sampling seed: the same seed, settings, device and precision give the same answer (PEFT Studio's own random stream, not torch's)", defaultText: String(DEFAULT_SEED) },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'the CPUs this process may use' },
    DEVICE_FLAG,
    PRECISION_FLAG,
    ...BASE_QUANT_FLAGS,
  ],
  notes: [
    "Tokens are chosen as transformers' generate() chooses them: the repetition penalty and the n-gram ban, then greedy (temperature 0) or temperature, top-k, top-p, min-p, typical-p, the epsilon and eta cutoffs, and a draw. Unset settings come from the model's generation_config.json, else transformers' defaults; the settings used are printed to stderr.",
    "Generation stops at an end-of-sequence token (generation_config.json / config.json), at the token the chat template ends an assistant turn with (chat layouts), or after --max-new-tokens.",
    'An adapter answers best when prompted as its training rows were laid out: auto reads that from its run (chat rows: chat; alpaca rows: alpaca; completion and text rows: plain) and says which it used.',
    'The answer is printed as it is generated; Ctrl-C ends it where it is (a second Ctrl-C quits at once).',
  ],
};

const DEFAULT_MAX_NEW_TOKENS = 128;

/** "a", "a and b", "a, b and c" */
function wordList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The flag of each sampling setting, for a message that says how to give it. */
const SAMPLING_FLAGS: Record<SamplingKey, string> = {
  temperature: '--temperature', topK: '--top-k', topP: '--top-p', minP: '--min-p', typicalP: '--typical-p', epsilonCutoff: '--epsilon-cutoff', etaCutoff: '--eta-cutoff',
  repetitionPenalty: '--repetition-penalty', noRepeatNgramSize: '--no-repeat-ngram-size',
};

export const generateCommand: Command = {
  spec: generateSpec,
  async run(args, io) {
    const model = args.requireString('model');
    const prompt = args.requireString('prompt');
    const system = args.string('system') ?? '';
    const asked = (args.string('prompt-format') ?? 'auto') as PromptFormat | 'auto';
    const trained = asked === 'auto' ? await trainedPromptFormat(args.string('adapter') ?? model) : null;
    const format: PromptFormat = asked === 'auto' ? trained?.format ?? (system.trim() !== '' ? 'chat' : 'plain') : asked;
    // before the model is loaded: a conflict of flags costs no loading time
    if (format === 'plain' && system.trim() !== '') {
      throw new Error(trained
        ? `--system: the run of ${args.string('adapter') ? '--adapter' : '--model'} was trained on ${trained.dataFormat} rows, prompted as plain text, where a system message has no place; leave --system out, or pass --prompt-format chat or alpaca`
        : `--prompt-format plain: ${PLAIN_TAKES_NO_SYSTEM}`);
    }
    const session = await openSession(model, { threads: args.number('threads') ?? defaultThreads(), adapter: args.string('adapter') ?? null, quantization: quantizationFromArgs(args), device: deviceFromArgs(args), precision: precisionFromArgs(args), purpose: 'generate' });
    for (const notice of session.notices) io.stderr(`note: ${notice}\n`);
    if (session.placement) io.stderr(`note: ${session.placement}\n`);
    try {
      const fileConfig = await readGenerationConfig(session.folder.dir);
      const flags: Partial<SamplingSettings> = { seed: args.number('seed') };
      for (const key of SAMPLING_KEYS) flags[key] = args.number(SAMPLING_FLAGS[key].slice('--'.length));
      const sampling = resolveSampling(fileConfig, flags, (key) => `pass ${SAMPLING_FLAGS[key]}`);
      const ignored = ignoredKeysNotice(fileConfig);
      if (ignored) io.stderr(`note: ${ignored}\n`);
      let laidOut;
      try {
        laidOut = layOutPrompt(session.tokenizer, format, prompt, system, trained?.reasoning === true);
      } catch (e) {
        if (e instanceof PromptFormatError) throw new Error(`${e.field === 'system' ? '--system' : `--prompt-format ${format}`}: ${e.message}`);
        throw e;
      }
      if (trained && format !== 'plain') io.stderr(`note: the prompt is laid out as the run's ${trained.dataFormat} rows were: ${laidOut.layout} (--prompt-format plain for the text as written)\n`);
      const promptIds = laidOut.ids;
      if (args.boolean('show-prompt')) io.stderr(`prompt (${laidOut.layout}, ${promptIds.length} tokens):\n${laidOut.text}\n`);
      // Virtual tokens (prompt / prefix tuning) take the first positions of the cache.
      const positions = session.folder.spec.maxPositionEmbeddings - virtualTokensOf(session.adapter);
      const room = positions - promptIds.length;
      // An explicit --max-new-tokens that does not fit is an error; the default shrinks to fit.
      const given = args.number('max-new-tokens');
      const maxNewTokens = given ?? Math.max(1, Math.min(DEFAULT_MAX_NEW_TOKENS, room));
      const limit = positionLimitProblem(promptIds.length, maxNewTokens, positions, given === undefined ? null : '--max-new-tokens');
      if (limit) throw new Error(limit.message);
      const unused = sampling.temperature === 0 ? SAMPLED_ONLY.map((key) => SAMPLING_FLAGS[key]).filter((flag) => args.number(flag.slice(2)) !== undefined) : [];
      const unusedWords = unused.length === 0 ? '' : ` (${wordList(unused)} ${unused.length === 1 ? 'applies' : 'apply'} only when sampling: pass --temperature above 0)`;
      io.stderr(`note: ${samplingWords(sampling)}${unusedWords}\n`);
      // The answer is printed as it comes; Ctrl-C ends it at the next token (a second one, at once).
      const stream = new TextStream(answerDecoder(session.tokenizer));
      let stopAsked = false;
      let firstAt = 0;
      const onSignal = () => {
        const action = stopSignalAction(stopAsked ? 2 : 1, Date.now() - firstAt);
        if (action === 'kill') process.exit(130);
        if (action === 'cancel') {
          stopAsked = true;
          firstAt = Date.now();
        }
      };
      process.on('SIGINT', onSignal);
      const result = await generate(session.engine, promptIds, {
        vocabSize: session.folder.spec.vocabSize,
        maxNewTokens,
        ...sampling,
        stopTokenIds: [...(await stopTokenIds(session.folder, session.tokenizer)), ...laidOut.stopTokenIds],
        maxPositions: positions,
        shouldStop: () => stopAsked,
      }, (id) => io.stdout(stream.push(id))).catch(async (e: unknown) => {
        if (!(e instanceof NonFiniteOutputError)) throw e;
        throw new Error(await explainNonFiniteOutput(session.engine, e.what, { model, adapter: args.string('adapter') ?? null }));
      }).finally(() => process.off('SIGINT', onSignal));
      io.stdout(stream.finish() + '\n');
      if (result.stoppedBy === 'stopped') io.stderr(`note: stopped (Ctrl-C) after ${result.tokens.length} ${result.tokens.length === 1 ? 'token' : 'tokens'}\n`);
    } finally {
      session.dispose();
    }
  },
};
