// `generate --prompt-format`: an adapter trained on chat rows is prompted as
// those rows were laid out (read from its run, also from one of its
// checkpoints or its best/ adapter), and the answer is the one generate() gives in this process
// for the chat layout's tokens; a run on completion rows keeps the text as
// written; an explicit layout and --system work, and a system message in the
// plain layout is refused naming the flag.
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../inference/generate.js';
import { layOutPrompt, type PromptFormat } from '../inference/prompt-format.js';
import { trainedPromptFormat } from '../inference/trained-prompt-format.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { openSession, stopTokenIds } from '../session.js';
import { cli, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import type { TinyModel } from '../testing/tiny-model.js';

const THREADS = ['--threads', '2'];
const GEN = ['--max-new-tokens', '6', '--temperature', '0', ...THREADS];
let model: TinyModel;
let dir: string;
let chatRun: string;
let completionRun: string;
let tokenizer: ModelTokenizer;

beforeAll(async () => {
  model = await tinyModel({ seed: 21 });
  tokenizer = await ModelTokenizer.load(model.dir);
  dir = tempDir('gen-format');
  const chat = writeJsonl(join(dir, 'chat.jsonl'), Array.from({ length: 8 }, (_, i) => ({ messages: [{ role: 'user', content: `the cat ${i}` }, { role: 'assistant', content: 'the dog' }] })));
  const completion = writeJsonl(join(dir, 'completion.jsonl'), Array.from({ length: 8 }, (_, i) => ({ prompt: `the cat ${i}`, completion: ' the dog' })));
  chatRun = join(dir, 'chat-run');
  completionRun = join(dir, 'completion-run');
  for (const [data, out] of [[chat, chatRun], [completion, completionRun]]) {
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', 'lora', '--steps', '2', '--save-every', '1', '--lr', '0.05', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 120_000);

/** Token count of a text without special tokens added (the tokenizer parses a literal "<s>" in it as BOS). */
function bosLength(text: string): number {
  return tokenizer.encode(text, { addSpecialTokens: false }).length;
}

/** generate() in this process for the layout's tokens, as the CLI prints it. */
async function expected(adapter: string, format: PromptFormat, prompt: string, system = ''): Promise<string> {
  const session = await openSession(model.dir, { threads: 2, adapter });
  try {
    const laidOut = layOutPrompt(session.tokenizer, format, prompt, system);
    const r = await generate(session.engine, laidOut.ids, {
      maxNewTokens: 6, temperature: 0, topP: 1, seed: 42,
      stopTokenIds: [...(await stopTokenIds(session.folder, session.tokenizer)), ...laidOut.stopTokenIds],
      maxPositions: session.folder.spec.maxPositionEmbeddings,
    });
    return session.tokenizer.decode(r.tokens, { skipSpecialTokens: true }) + '\n';
  } finally {
    session.dispose();
  }
}

describe('generate --prompt-format', () => {
  it("auto: a chat run's adapter (and its checkpoint) is prompted in the chat layout, and says so", async () => {
    const auto = await cli(['generate', '--model', model.dir, '--adapter', chatRun, '--prompt', 'the cat', '--show-prompt', ...GEN]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).toContain(':\n<s>### User:\nthe cat\n\n### Assistant:\n\n');
    expect(auto.stderr).toContain("note: the prompt is laid out as the run's chat rows were: the fallback chat template (### User / ### Assistant) (--prompt-format plain for the text as written)");
    expect(auto.stdout).toBe(await expected(chatRun, 'chat', 'the cat'));
    const plain = await cli(['generate', '--model', model.dir, '--adapter', chatRun, '--prompt', 'the cat', '--prompt-format', 'plain', ...GEN]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).not.toContain('laid out');
    expect(plain.stdout).toBe(await expected(chatRun, 'plain', 'the cat'));
    expect(auto.stdout.trim()).not.toBe('');
    expect(plain.stdout).not.toBe(auto.stdout); // the two layouts reach the model differently
    const checkpoint = join(chatRun, 'checkpoints', 'step-1');
    const fromCheckpoint = await cli(['generate', '--model', model.dir, '--adapter', checkpoint, '--prompt', 'the cat', ...GEN]);
    expect(fromCheckpoint.stderr).toContain("laid out as the run's chat rows were");
    expect(fromCheckpoint.stdout).toBe(await expected(checkpoint, 'chat', 'the cat'));
  }, 60_000);

  it("auto: a run's best adapter (RUN/best, --keep-best) is prompted as the run's rows were, as RUN is", async () => {
    const data = join(dir, 'chat.jsonl');
    const run = join(dir, 'chat-best-run');
    const t = await cli(['train', '--model', model.dir, '--data', data, '--eval-data', data, '--eval-every', '1', '--keep-best', '--out', run, '--method', 'lora', '--steps', '2', '--lr', '0.05', ...THREADS]);
    expect(t.code, t.stderr).toBe(0);
    const best = join(run, 'best');
    expect(existsSync(join(best, 'best.json'))).toBe(true);
    // the function every user reads it through (generate, the GGUF export's Modelfile, the Try page's reasoning flag)
    expect(await trainedPromptFormat(best)).toEqual({ format: 'chat', dataFormat: 'chat', reasoning: false });
    expect(await trainedPromptFormat(best)).toEqual(await trainedPromptFormat(run));
    // the same folder's files anywhere else belong to no run: nothing is known of its rows
    const copy = join(dir, 'best-copy');
    cpSync(best, copy, { recursive: true });
    expect(await trainedPromptFormat(copy)).toBeNull();
    // BOS, the fallback template's user turn, its assistant header: counted by the tokenizer, not read from the output
    const layout = `prompt (the fallback chat template (### User / ### Assistant), ${bosLength('<s>### User:\nthe cat\n\n### Assistant:\n')} tokens):\n<s>### User:\nthe cat\n\n### Assistant:\n\n`;
    for (const adapter of [run, best]) {
      const r = await cli(['generate', '--model', model.dir, '--adapter', adapter, '--prompt', 'the cat', '--show-prompt', ...GEN]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("note: the prompt is laid out as the run's chat rows were");
      expect(r.stderr).toContain(layout);
      expect(r.stdout).toBe(await expected(adapter, 'chat', 'the cat'));
    }
  }, 120_000);

  it('auto: a completion run keeps the text as written; an explicit layout and --system are used as given', async () => {
    const auto = await cli(['generate', '--model', model.dir, '--adapter', completionRun, '--prompt', 'the cat', ...GEN]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).not.toContain('laid out');
    expect(auto.stdout).toBe(await expected(completionRun, 'plain', 'the cat'));
    const system = await cli(['generate', '--model', model.dir, '--adapter', chatRun, '--prompt', 'the cat', '--prompt-format', 'chat', '--system', 'Answer briefly.', '--show-prompt', ...GEN]);
    expect(system.code, system.stderr).toBe(0);
    expect(system.stdout).toBe(await expected(chatRun, 'chat', 'the cat', 'Answer briefly.'));
    // the fallback template (the tiny model has none): BOS, the system text, the user turn, the assistant header
    expect(system.stderr).toContain(`prompt (the fallback chat template (### User / ### Assistant), ${bosLength('<s>Answer briefly.\n\n### User:\nthe cat\n\n### Assistant:\n')} tokens):\n<s>Answer briefly.\n\n### User:\nthe cat\n\n### Assistant:\n\n`);
    const alpaca = await cli(['generate', '--model', model.dir, '--adapter', chatRun, '--prompt', 'the cat', '--prompt-format', 'alpaca', '--show-prompt', ...GEN]);
    expect(alpaca.code, alpaca.stderr).toBe(0);
    expect(alpaca.stdout).toBe(await expected(chatRun, 'alpaca', 'the cat'));
    const alpacaText = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nthe cat\n\n### Response:\n';
    expect(alpaca.stderr).toContain(`prompt (the Alpaca prompt as alpaca-lora writes it, ${1 + bosLength(alpacaText)} tokens):\n<s>${alpacaText}\n`);
  }, 60_000);

  it('refuses a system message in the plain layout (before loading the model), and an unknown layout, naming the flag', async () => {
    const r = await cli(['generate', '--model', model.dir, '--prompt', 'the cat', '--prompt-format', 'plain', '--system', 'Be brief.', ...GEN]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--prompt-format plain: a system message needs the chat or alpaca layout');
    // auto on a completion run: the run is named, not a flag the user did not type; a model that cannot load is not reached
    const a = await cli(['generate', '--model', join(dir, 'no-such-model'), '--adapter', completionRun, '--prompt', 'the cat', '--system', 'Be brief.', ...GEN]);
    expect(a.code).not.toBe(0);
    expect(a.stderr).toContain('--system: the run of --adapter was trained on completion rows, prompted as plain text, where a system message has no place; leave --system out, or pass --prompt-format chat or alpaca');
    const u = await cli(['generate', '--model', model.dir, '--prompt', 'the cat', '--prompt-format', 'markdown', ...GEN]);
    expect(u.code).not.toBe(0);
    expect(u.stderr).toContain("--prompt-format must be one of auto, plain, chat, alpaca; got 'markdown'");
  });
});
