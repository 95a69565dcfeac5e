// The dataset layer with the bundled demo model (resources/demo/model): its
// chat template writes only user and assistant turns, and it has 256
// positions, so it shows (1) the notice when a template drops system
// messages and (2) `data inspect`'s default --seq-len shrinking to the
// model's positions, as `train` does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../engine/load.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { cli, tempDir, writeJsonl } from '../testing/e2e-fixtures.js';
import { loadDataset } from './load-dataset.js';
import type { DatasetOptions } from './options.js';
import { previewRow } from './preview.js';
import { loadLlama3, LLAMA3_VOCAB } from './testing/llama3.js';

const DEMO = join(packageRoot(), 'resources', 'demo', 'model');
const demoConfig = JSON.parse(readFileSync(join(DEMO, 'config.json'), 'utf8')) as { max_position_embeddings: number; vocab_size: number };
let demo: ModelTokenizer;
let dir: string;
const opts = (o: Partial<DatasetOptions> = {}): DatasetOptions => ({ format: 'auto', seqLen: 128, completionOnly: true, pack: false, vocabSize: demoConfig.vocab_size, ...o });
const systemNotices = (notices: string[]) => notices.filter((n) => /drops system messages/.test(n));

beforeAll(async () => {
  demo = await ModelTokenizer.load(DEMO);
  dir = tempDir('demo-model-data');
});

describe('system prompts the chat template drops', () => {
  it('the demo template really ignores system messages (the premise of the notice)', () => {
    const template = JSON.parse(readFileSync(join(DEMO, 'tokenizer_config.json'), 'utf8')).chat_template as string;
    expect(template).not.toContain('system');
  });

  it('alpaca rows: one notice with the count of rows whose system field is lost', async () => {
    const file = writeJsonl(join(dir, 'alpaca.jsonl'), [
      { instruction: 'Say hi.', output: 'hi', system: 'Always answer in French.' },
      { instruction: 'Say bye.', output: 'bye' },
      { instruction: 'Count.', output: 'one two', system: 'Be brief.' },
      { instruction: 'Blank system.', output: 'ok', system: '   ' },
    ]);
    const { report } = await loadDataset(file, demo, opts());
    expect(report.rows.used).toBe(4);
    const notices = systemNotices(report.notices);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain('the system prompt of 2 of 4 used rows is not in the training text');
    // and indeed the rendered text has no trace of it
    const preview = await previewRow(file, 1, demo, opts());
    expect(preview.text).toBeDefined();
    expect(preview.text).not.toContain('French');
    expect(preview.text).toContain('Say hi.');
  });

  it('chat rows: a system turn (OpenAI or ShareGPT top-level "system") counts once per row', async () => {
    const file = writeJsonl(join(dir, 'chat.jsonl'), [
      { messages: [{ role: 'system', content: 'You are a pirate.' }, { role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Arr' }] },
      { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yo' }] },
      { conversations: [{ from: 'human', value: 'Name?' }, { from: 'gpt', value: 'Bob' }], system: 'You are Bob.' },
    ]);
    const { report } = await loadDataset(file, demo, opts());
    expect(report.format).toBe('chat');
    expect(systemNotices(report.notices)).toEqual([expect.stringContaining('the system prompt of 2 of 3 used rows')]);
  });

  it('no notice when the template writes the system message (Llama 3), or when no row has one', async () => {
    const llama3 = await loadLlama3();
    const file = writeJsonl(join(dir, 'kept.jsonl'), [
      { messages: [{ role: 'system', content: 'You are a pirate.' }, { role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Arr' }] },
    ]);
    const kept = await loadDataset(file, llama3, opts({ vocabSize: LLAMA3_VOCAB }));
    expect(systemNotices(kept.report.notices)).toEqual([]);
    const none = writeJsonl(join(dir, 'none.jsonl'), [{ instruction: 'Say hi.', output: 'hi' }]);
    expect(systemNotices((await loadDataset(none, demo, opts())).report.notices)).toEqual([]);
  });
});

describe('data inspect --seq-len with a model of few positions', () => {
  it('defaults to the model\'s max_position_embeddings when it is below 512; an explicit value beyond it is an error naming the flag', async () => {
    expect(demoConfig.max_position_embeddings).toBeLessThan(512);
    const file = writeJsonl(join(dir, 'inspect.jsonl'), [{ prompt: 'Q', completion: 'A' }]);
    const byDefault = await cli(['data', 'inspect', file, '--model', DEMO]);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(JSON.parse(byDefault.stdout).seqLen).toBe(demoConfig.max_position_embeddings);

    const fits = await cli(['data', 'inspect', file, '--model', DEMO, '--seq-len', '100']);
    expect(fits.code, fits.stderr).toBe(0);
    expect(JSON.parse(fits.stdout).seqLen).toBe(100);

    const tooLong = await cli(['data', 'inspect', file, '--model', DEMO, '--seq-len', '512']);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain(`--seq-len 512 exceeds the model's max_position_embeddings (${demoConfig.max_position_embeddings})`);
  });
});
