// The token cache (token-cache.ts): a load that takes a file's tokens from
// the cache gives exactly what a load without any cache gives (examples and
// report, problems and line numbers included), and tokenizes nothing; any
// change to what the tokens depend on misses; a bad entry or a folder that
// cannot be written only costs the cache. Real files, the real tokenizers of
// the demo model (a chat template) and of a tiny model (none).
//
// "Tokenizes nothing" is read from the loader's own count (LoadedDataset
// tokenized.rows: one per prepareRow call, the loader's only way to tokenize;
// tokenized.cachedFiles: files the cache gave). A cold load's count is held to
// the file's record count here, so the counter is known to count.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { cli, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { canMakeImmutable } from '../testing/immutable-folder.js';
import { DataError } from '../training/data.js';
import { loadRunData } from '../training/run.js';
import { loadDataset, type LoadedDataset } from './load-dataset.js';
import type { DatasetOptions } from './options.js';
import { cacheContents } from './token-cache-bound.js';
import { CACHE_VERSION, DEFAULT_TOKEN_CACHE_MAX_BYTES, defaultTokenCache, TOKEN_CACHE_MAX_BYTES_ENV, TokenCache, tokenCacheDir } from './token-cache.js';

const DEMO_MODEL = resolve('resources/demo/model');
let demo: ModelTokenizer;
let tiny: ModelTokenizer;
let tinyDir: string;
let work: string;
const GIB = 1024 ** 3;

beforeAll(async () => {
  demo = await ModelTokenizer.load(DEMO_MODEL);
  tinyDir = (await tinyModel({ seed: 7 })).dir;
  tiny = await ModelTokenizer.load(tinyDir);
  work = tempDir('token-cache');
});

const savedEnv = { home: process.env.PEFT_STUDIO_HOME, max: process.env[TOKEN_CACHE_MAX_BYTES_ENV] };
afterEach(() => {
  for (const [name, value] of [['PEFT_STUDIO_HOME', savedEnv.home], [TOKEN_CACHE_MAX_BYTES_ENV, savedEnv.max]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const opts = (tok: ModelTokenizer, o: Partial<DatasetOptions> = {}): DatasetOptions => ({ format: 'auto', seqLen: 512, completionOnly: true, pack: false, vocabSize: tok.vocabSize, ...o });
let dirs = 0;
const freshDir = (tag: string) => {
  const dir = join(work, `${tag}-${dirs++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const freshCache = (max = GIB) => new TokenCache(join(freshDir('cache'), 'tokenized'), max);
/** The reference: a load with no cache at all. */
const uncached = (path: string, tok: ModelTokenizer, o: DatasetOptions) => loadDataset(path, tok, o, null);

/** Examples and report identical, to the order of every object's keys. */
function expectSameLoad(got: LoadedDataset, want: LoadedDataset): void {
  expect(got.examples).toStrictEqual(want.examples);
  expect(got.report).toStrictEqual(want.report);
  expect(JSON.stringify([got.examples, got.report])).toBe(JSON.stringify([want.examples, want.report]));
}

/** Rows of each format, with a line that does not parse and a row that cannot be used in the middle. */
const ROWS: Record<string, (string | object)[]> = {
  text: [{ text: 'The cat sat on the mat.' }, '{"text": "broken', { text: '' }, { text: 'Dogs bark at night, and the owls answer them.' }],
  completion: [{ prompt: 'Q: 2+2?\nA:', completion: ' 4' }, '{not json', { prompt: 'Q: hi', completion: '' }, { prompt: 'Q: the sky?\nA:', completion: ' blue' }],
  alpaca: [
    { instruction: 'Name a colour.', input: '', output: 'Red' },
    '{"instruction": ',
    { instruction: 'Add.', input: '2 and 3' },
    { instruction: 'Greet.', output: 'Hello there, how are you today?', system: 'Be kind.' },
  ],
  chat: [
    { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] },
    '[1, 2',
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '' }] },
    { messages: [{ role: 'user', content: 'Two turns?' }, { role: 'assistant', content: 'Yes' }, { role: 'user', content: 'Sure?' }, { role: 'assistant', content: 'Quite sure.' }] },
  ],
  tokenized: [{ input_ids: [5, 6, 7, 8], labels: [-100, -100, 7, 8] }, '{"input_ids": [1,', { input_ids: [5, 99999] }, { input_ids: [9, 10, 11, 12, 13, 14] }],
};

function writeRows(file: string, rows: (string | object)[]): string {
  writeFileSync(file, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return file;
}

describe('a warm load is a cold load', () => {
  for (const format of Object.keys(ROWS)) {
    for (const [name, tok] of [['demo model (chat template)', () => demo], ['tiny model (no template)', () => tiny]] as const) {
      it(`${format} rows, ${name}: the same examples, report, problems and lines, and nothing tokenized`, async () => {
        const file = writeRows(join(freshDir(format), `${format}.jsonl`), ROWS[format]);
        const cache = freshCache();
        const o = opts(tok());
        const reference = await uncached(file, tok(), o);
        expect(reference.report.skipped.map((p) => [p.line, p.kind])).toEqual([[2, 'malformed'], [3, format === 'tokenized' ? 'vocabulary' : format === 'alpaca' ? 'missing-field' : 'empty']]);
        const cold = await loadDataset(file, tok(), o, cache);
        expect(cold.tokenized).toEqual({ files: 1, rows: 3, cachedFiles: 0 });
        expectSameLoad(cold, reference);
        const warm = await loadDataset(file, tok(), o, cache);
        expect(warm.tokenized).toEqual({ files: 0, rows: 0, cachedFiles: 1 });
        expectSameLoad(warm, reference);
      });
    }
  }

  it('a system prompt the chat template drops is still counted and noticed from the cache', async () => {
    const file = writeRows(join(freshDir('system'), 'chat.jsonl'), ROWS.chat);
    const cache = freshCache();
    await loadDataset(file, demo, opts(demo), cache);
    const warm = await loadDataset(file, demo, opts(demo), cache);
    expect(warm.tokenized.rows).toBe(0);
    expect(warm.report.notices.some((n) => n.startsWith("the model's chat template drops system messages: the system prompt of 1 of 2 used rows"))).toBe(true);
    expectSameLoad(warm, await uncached(file, demo, opts(demo)));
  });

  it('other sequence lengths and packing on a warm cache: each a cold load with those settings', async () => {
    const rows: object[] = Array.from({ length: 40 }, (_, i) => ({ instruction: `Say ${i}.`, input: '', output: `number ${i} `.repeat(1 + (i % 9)) }));
    rows.splice(17, 0, { instruction: 'no output here' }, { instruction: `A long question: ${'why is that so '.repeat(12)}?`, input: '', output: 'Yes.' });
    const file = writeJsonl(join(freshDir('settings'), 'alpaca.jsonl'), rows);
    const cache = freshCache();
    const full = await loadDataset(file, demo, opts(demo), cache);
    const { min, median, max } = full.report.lengths;
    // the median truncates rows and leaves the long question nothing to learn
    const settings = [{ seqLen: median }, { seqLen: median, pack: true }, { seqLen: max + 10, pack: true }, { seqLen: min + 1 }];
    for (const s of settings) {
      const warm = await loadDataset(file, demo, opts(demo, s), cache);
      expect(warm.tokenized.rows).toBe(0);
      expectSameLoad(warm, await uncached(file, demo, opts(demo, s)));
    }
    const truncating = await loadDataset(file, demo, opts(demo, settings[0]), cache);
    expect(truncating.report.truncation.rows).toBeGreaterThan(0);
    expect(truncating.report.skippedByKind['nothing-to-learn']).toBe(1);
    expect((await loadDataset(file, demo, opts(demo, settings[2]), cache)).report.packedRows).toBeGreaterThan(0);
  });

  it("a run's rows (loadRunData: eval split, packing) from a warm cache are those of a run without one", async () => {
    process.env.PEFT_STUDIO_HOME = freshDir('home');
    const model = await tinyModel({ seed: 3 });
    const folder = await openModelFolder(model.dir);
    const tok = await ModelTokenizer.load(model.dir);
    const data = writeJsonl(join(freshDir('run'), 'train.jsonl'), Array.from({ length: 30 }, (_, i) => ({ prompt: `Count to ${i}:`, completion: ` ${Array.from({ length: 1 + (i % 6) }, (_, k) => k).join(' ')}` })));
    const config = (...flags: string[]) => trainConfigFromArgs(parseArgs(trainSpec, ['--model', model.dir, '--data', data, '--out', join(work, 'unused-run'), ...flags]));
    await loadRunData(config('--eval-split', '0'), tok, folder); // fills the cache
    for (const flags of [['--eval-split', '0.2', '--seed', '4'], ['--eval-split', '0.3', '--pack', '--seq-len', '48'], ['--seq-len', '16']]) {
      const warm = await loadRunData(config(...flags), tok, folder);
      process.env[TOKEN_CACHE_MAX_BYTES_ENV] = '0';
      const reference = await loadRunData(config(...flags), tok, folder);
      delete process.env[TOKEN_CACHE_MAX_BYTES_ENV];
      expect(warm.train).toStrictEqual(reference.train);
      expect(warm.eval).toStrictEqual(reference.eval);
      expect(warm.notes).toStrictEqual(reference.notes);
      expect(warm.summary).toStrictEqual(reference.summary);
    }
    expect((await cacheContents(tokenCacheDir(), CACHE_VERSION)).entries).toHaveLength(1);
  });
});

describe('a folder of shards', () => {
  const shard = (i: number, rows: number, start = 0) => Array.from({ length: rows }, (_, k) => ({ prompt: `Shard ${i}, row ${start + k}:`, completion: ` answer ${(start + k) * (i + 1)}` }));

  it('is cached file by file: warm equals cold, and a changed shard is the only one tokenized again', async () => {
    const folder = freshDir('shards');
    const files = [0, 1, 2, 3].map((i) => join(folder, `part-${i}.jsonl`));
    writeJsonl(files[0], shard(0, 5));
    writeRows(files[1], [...shard(1, 2), '{"prompt": broken', ...shard(1, 3, 2)]);
    writeFileSync(files[2], ''); // an empty shard: reported, says nothing about the format
    writeJsonl(files[3], shard(3, 4));
    const cache = freshCache();
    const cold = await loadDataset(folder, demo, opts(demo), cache);
    expect(cold.tokenized).toEqual({ files: 4, rows: 14, cachedFiles: 0 });
    expect(cold.report.skipped.map((p) => p.source)).toEqual([`${files[1]}:3`]);
    expectSameLoad(cold, await uncached(folder, demo, opts(demo)));
    const warm = await loadDataset(folder, demo, opts(demo), cache);
    expect(warm.tokenized).toEqual({ files: 0, rows: 0, cachedFiles: 4 });
    expectSameLoad(warm, cold);

    writeJsonl(files[3], shard(3, 6, 10));
    const changed = await loadDataset(folder, demo, opts(demo, { pack: true }), cache);
    expect(changed.tokenized).toEqual({ files: 1, rows: 6, cachedFiles: 3 });
    expectSameLoad(changed, await uncached(folder, demo, opts(demo, { pack: true })));
  });

  it('a shard of another format is refused from the cache as from the files', async () => {
    const folder = freshDir('mixed');
    writeJsonl(join(folder, 'a-1.jsonl'), shard(0, 3));
    writeJsonl(join(folder, 'a-2.jsonl'), [{ text: 'plain text rows' }]);
    const cache = freshCache();
    const why = async (c: TokenCache | null) => loadDataset(folder, demo, opts(demo), c).then(() => 'loaded', (e: Error) => e.message);
    // each shard alone fills the cache with its own format
    for (const file of ['a-1.jsonl', 'a-2.jsonl']) await loadDataset(join(folder, file), demo, opts(demo), cache);
    const fromFiles = await why(null);
    expect(fromFiles).toMatch(/a-2\.jsonl: its rows are text rows, but .*a-1\.jsonl's are completion rows/);
    expect(await why(cache)).toBe(fromFiles);
  });
});

describe('what the key holds: a change to any of it tokenizes again', () => {
  it('the file content, at the same size and modification time', async () => {
    const file = writeJsonl(join(freshDir('content'), 'c.jsonl'), [{ prompt: 'Say:', completion: ' cat' }, { prompt: 'Say:', completion: ' dog' }]);
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    utimesSync(file, mtime, mtime);
    const stamp = [statSync(file).size, statSync(file).mtimeMs];
    const cache = freshCache();
    const before = await loadDataset(file, tiny, opts(tiny), cache);
    writeJsonl(file, [{ prompt: 'Say:', completion: ' cow' }, { prompt: 'Say:', completion: ' hog' }]);
    utimesSync(file, mtime, mtime);
    expect([statSync(file).size, statSync(file).mtimeMs]).toEqual(stamp);
    const after = await loadDataset(file, tiny, opts(tiny), cache);
    expect(after.tokenized.rows).toBe(2);
    expect(after.examples).not.toStrictEqual(before.examples);
    expectSameLoad(after, await uncached(file, tiny, opts(tiny)));
  });

  /** The demo model's tokenizer files in a folder of their own, to edit. */
  function demoTokenizerCopy(): string {
    const dir = freshDir('tokenizer');
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) copyFileSync(join(DEMO_MODEL, f), join(dir, f));
    return dir;
  }
  const editJson = (file: string, edit: (json: Record<string, unknown>) => void) => {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    edit(json);
    writeFileSync(file, JSON.stringify(json));
  };

  it('tokenizer.json (its merges), in the same folder', async () => {
    const dir = demoTokenizerCopy();
    const file = writeRows(join(freshDir('tok'), 'alpaca.jsonl'), ROWS.alpaca);
    const cache = freshCache();
    const before = await loadDataset(file, await ModelTokenizer.load(dir), opts(demo), cache);
    editJson(join(dir, 'tokenizer.json'), (json) => ((json.model as { merges: unknown[] }).merges = []));
    const edited = await ModelTokenizer.load(dir);
    const after = await loadDataset(file, edited, opts(demo), cache);
    expect(after.tokenized.rows).toBe(3);
    expect(after.examples[0].inputIds.length).toBeGreaterThan(before.examples[0].inputIds.length); // no merges: byte tokens
    expectSameLoad(after, await uncached(file, edited, opts(demo)));
  });

  it('tokenizer.json changed after the tokenizer was loaded: entries name the bytes the tokenizer was built from', async () => {
    const dir = demoTokenizerCopy();
    const file = writeRows(join(freshDir('tok-later'), 'alpaca.jsonl'), ROWS.alpaca);
    const cache = freshCache();
    const loaded = await ModelTokenizer.load(dir);
    expect(loaded.fileSha256.tokenizer).toBe(createHash('sha256').update(readFileSync(join(dir, 'tokenizer.json'))).digest('hex'));
    // the file changes while the loaded tokenizer is still in use: its rows must not be filed under the new bytes
    editJson(join(dir, 'tokenizer.json'), (json) => ((json.model as { merges: unknown[] }).merges = []));
    await loadDataset(file, loaded, opts(demo), cache);
    const edited = await ModelTokenizer.load(dir);
    const after = await loadDataset(file, edited, opts(demo), cache);
    expect(after.tokenized.rows).toBe(3);
    expectSameLoad(after, await uncached(file, edited, opts(demo)));
  });

  it('the chat template (tokenizer_config.json)', async () => {
    const dir = demoTokenizerCopy();
    const file = writeRows(join(freshDir('template'), 'chat.jsonl'), ROWS.chat);
    const cache = freshCache();
    const before = await loadDataset(file, await ModelTokenizer.load(dir), opts(demo), cache);
    editJson(join(dir, 'tokenizer_config.json'), (json) => (json.chat_template = (json.chat_template as string).replace('Question: ', 'Q: ')));
    const edited = await ModelTokenizer.load(dir);
    const after = await loadDataset(file, edited, opts(demo), cache);
    expect(after.tokenized.rows).toBe(3);
    expect(after.examples).not.toStrictEqual(before.examples);
    expectSameLoad(after, await uncached(file, edited, opts(demo)));
  });

  it('the chat template in chat_template.jinja (transformers reads it first)', async () => {
    const dir = demoTokenizerCopy();
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    writeFileSync(join(dir, 'chat_template.jinja'), config.chat_template as string);
    const file = writeRows(join(freshDir('template-file'), 'chat.jsonl'), ROWS.chat);
    const cache = freshCache();
    const before = await loadDataset(file, await ModelTokenizer.load(dir), opts(demo), cache);
    writeFileSync(join(dir, 'chat_template.jinja'), (config.chat_template as string).replace('Question: ', 'Q: '));
    const edited = await ModelTokenizer.load(dir);
    const after = await loadDataset(file, edited, opts(demo), cache);
    expect(after.tokenized.rows).toBe(3);
    expect(after.examples).not.toStrictEqual(before.examples);
    expectSameLoad(after, await uncached(file, edited, opts(demo)));
  });

  it("config.json's model_type, where it decides the tokenizer class that adds BOS from add_bos_token", async () => {
    const dir = demoTokenizerCopy();
    // no tokenizer_class: model_type "llama" makes it LlamaTokenizerFast, which rebuilds BOS / EOS from the flags
    editJson(join(dir, 'tokenizer_config.json'), (json) => { delete json.tokenizer_class; json.add_bos_token = false; });
    const file = writeRows(join(freshDir('model-type'), 'text.jsonl'), ROWS.text);
    const cache = freshCache();
    const llama = await ModelTokenizer.load(dir);
    const before = await loadDataset(file, llama, opts(demo), cache);
    expect(before.examples[0].inputIds[0]).not.toBe(llama.bosId);
    // another model type: tokenizer.json's own post-processor (it adds BOS); the tokenizer files are unchanged
    editJson(join(dir, 'config.json'), (json) => (json.model_type = 'qwen2'));
    const other = await ModelTokenizer.load(dir);
    const after = await loadDataset(file, other, opts(demo), cache);
    expect(after.examples[0].inputIds[0]).toBe(other.bosId);
    expectSameLoad(after, await uncached(file, other, opts(demo)));
  });

  it('completionOnly, the vocabulary size and the format asked for', async () => {
    const file = writeRows(join(freshDir('settings'), 'tokenized.jsonl'), ROWS.tokenized);
    const cache = freshCache();
    await loadDataset(file, demo, opts(demo), cache);
    for (const settings of [{ completionOnly: false }, { vocabSize: 10 }, { format: 'tokenized' as const }]) {
      const changed = await loadDataset(file, demo, opts(demo, settings), cache);
      expect(changed.tokenized.rows).toBe(3);
      expectSameLoad(changed, await uncached(file, demo, opts(demo, settings)));
    }
    // the alpaca rows with every token trained: the prompt's labels too
    const alpaca = writeRows(join(freshDir('all-tokens'), 'alpaca.jsonl'), ROWS.alpaca);
    const masked = await loadDataset(alpaca, demo, opts(demo), cache);
    const all = await loadDataset(alpaca, demo, opts(demo, { completionOnly: false }), cache);
    expect(all.tokenized.rows).toBe(3);
    expect(all.report.tokens.trained).toBeGreaterThan(masked.report.tokens.trained);
    expectSameLoad(all, await uncached(alpaca, demo, opts(demo, { completionOnly: false })));
  });

  it('CACHE_VERSION: a cache of another version reads none of these entries, and removes them when it writes', async () => {
    const file = writeRows(join(freshDir('version'), 'text.jsonl'), ROWS.text);
    const cache = freshCache();
    await loadDataset(file, tiny, opts(tiny), cache);
    expect(readdirSync(cache.dir)).toEqual([expect.stringMatching(new RegExp(`^v${CACHE_VERSION}-[0-9a-f]{64}\\.tokens$`))]);
    const next = new TokenCache(cache.dir, cache.maxBytes, CACHE_VERSION + 1);
    const load = await loadDataset(file, tiny, opts(tiny), next);
    expect(load.tokenized.rows).toBe(3);
    expectSameLoad(load, await uncached(file, tiny, opts(tiny)));
    expect(readdirSync(cache.dir)).toEqual([expect.stringMatching(new RegExp(`^v${CACHE_VERSION + 1}-`))]);
  });
});

describe('a bad entry or folder costs only the cache', () => {
  /** A file, its reference load, and a cache holding its one entry. */
  async function cachedFile(tag: string) {
    const file = writeRows(join(freshDir(tag), 'chat.jsonl'), ROWS.chat);
    const cache = freshCache();
    await loadDataset(file, demo, opts(demo), cache);
    const [entry] = readdirSync(cache.dir);
    return { file, cache, entry: join(cache.dir, entry), reference: await uncached(file, demo, opts(demo)) };
  }

  const damages: [string, (entry: string) => void][] = [
    ['cut short', (entry) => truncateSync(entry, statSync(entry).size - 7)],
    ['cut to its header', (entry) => truncateSync(entry, 40)],
    ['empty', (entry) => truncateSync(entry, 0)],
    ['one token id changed', (entry) => {
      const bytes = readFileSync(entry);
      bytes[bytes.length - 32 - 4 * 3] ^= 0x01; // a label near the end; the checksum no longer matches
      writeFileSync(entry, bytes);
    }],
    ['its checksum changed', (entry) => {
      const bytes = readFileSync(entry);
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(entry, bytes);
    }],
    ['not an entry at all', (entry) => writeFileSync(entry, 'hello')],
  ];
  for (const [what, damage] of damages) {
    it(`an entry ${what}: tokenized again, the same load, and replaced`, async () => {
      const { file, cache, entry, reference } = await cachedFile('damaged');
      damage(entry);
      const load = await loadDataset(file, demo, opts(demo), cache);
      expect(load.tokenized.rows).toBe(3);
      expectSameLoad(load, reference);
      const again = await loadDataset(file, demo, opts(demo), cache);
      expect(again.tokenized).toEqual({ files: 0, rows: 0, cachedFiles: 1 });
      expectSameLoad(again, reference);
    });
  }

  it('a cache folder that cannot be created (a file is in its place): the same load, one notice for all the files', async () => {
    const folder = freshDir('no-cache-shards');
    for (const i of [1, 2, 3]) writeRows(join(folder, `part-${i}.jsonl`), ROWS.chat);
    const blocked = join(freshDir('blocked'), 'tokenized');
    writeFileSync(blocked, 'a file, not a folder');
    const cache = new TokenCache(blocked, GIB);
    const load = await loadDataset(folder, demo, opts(demo), cache);
    const reference = await uncached(folder, demo, opts(demo));
    expect(load.examples).toStrictEqual(reference.examples);
    const notices = load.report.notices.filter((n) => n.startsWith('the token cache'));
    expect(notices).toEqual([expect.stringMatching(new RegExp(`^the token cache ${blocked} cannot be written \\(.*\\), so this dataset is tokenized again on every load; .*${TOKEN_CACHE_MAX_BYTES_ENV}=0 turns the cache off\\)$`))]);
    // that notice is the only difference, placed before the skipped-rows summary
    const notice = notices[0];
    const expected = [...reference.report.notices];
    expected.splice(expected.length - 1, 0, notice);
    expect(load.report).toStrictEqual({ ...reference.report, notices: expected });
  });

  it.runIf(canMakeImmutable)('an immutable cache folder: its entries still read, a new file is tokenized and noticed', async () => {
    const { file, cache, reference } = await cachedFile('immutable');
    const other = writeRows(join(freshDir('immutable-other'), 'text.jsonl'), ROWS.text);
    execFileSync('chattr', ['+i', cache.dir]);
    try {
      const warm = await loadDataset(file, demo, opts(demo), cache);
      expect(warm.tokenized.rows).toBe(0);
      expectSameLoad(warm, reference);
      const fresh = await loadDataset(other, demo, opts(demo), cache);
      expect(fresh.tokenized.rows).toBe(3);
      expect(fresh.examples).toStrictEqual((await uncached(other, demo, opts(demo))).examples);
      expect(fresh.report.notices.filter((n) => n.startsWith(`the token cache ${cache.dir} cannot be written (`))).toHaveLength(1);
    } finally {
      execFileSync('chattr', ['-i', cache.dir]);
    }
  });
});

describe('the size bound', () => {
  /** Pre-tokenized files of one shape: their entries are the same size. */
  const sameShape = (dir: string, name: string, first: number) => writeJsonl(join(dir, `${name}.jsonl`), Array.from({ length: 20 }, (_, r) => ({ input_ids: Array.from({ length: 16 }, (_, t) => 3 + ((first + r + t) % 200)) })));

  it('removes the least recently used entries (a hit counts as a use)', async () => {
    const dir = freshDir('bound');
    const files = Object.fromEntries(['a', 'b', 'c', 'd'].map((name, i) => [name, sameShape(dir, name, i * 31)]));
    const unbounded = freshCache();
    for (const name of ['a', 'b', 'c']) await loadDataset(files[name], tiny, opts(tiny), unbounded);
    const entries = (await cacheContents(unbounded.dir, CACHE_VERSION)).entries;
    expect(new Set(entries.map((e) => e.bytes)).size).toBe(1);
    const size = entries[0].bytes;
    // a written first, c last; then a is read again
    const now = Date.now() / 1000;
    // each file's entry name, from a cache of its own (the key does not depend on the folder)
    const byFile = new Map<string, string>();
    for (const name of ['a', 'b', 'c']) {
      const fresh = new TokenCache(join(freshDir('probe'), 'tokenized'), GIB);
      await loadDataset(files[name], tiny, opts(tiny), fresh);
      byFile.set(name, readdirSync(fresh.dir)[0]);
    }
    for (const [k, name] of ['a', 'b', 'c'].entries()) utimesSync(join(unbounded.dir, byFile.get(name)!), now - 300 + 100 * k, now - 300 + 100 * k);
    const bounded = new TokenCache(unbounded.dir, 3 * size);
    expect((await loadDataset(files.a, tiny, opts(tiny), bounded)).tokenized.cachedFiles).toBe(1);
    await loadDataset(files.d, tiny, opts(tiny), bounded);
    const kept = new Set(readdirSync(unbounded.dir));
    expect(kept.has(byFile.get('b')!)).toBe(false);
    expect([...['a', 'c'].map((n) => kept.has(byFile.get(n)!)), kept.size]).toEqual([true, true, 3]);
    // and within the bound: a second miss evicts the next least recent (c)
    await loadDataset(files.b, tiny, opts(tiny), bounded);
    expect(new Set(readdirSync(unbounded.dir)).has(byFile.get('c')!)).toBe(false);
    expect(statSync(unbounded.dir).isDirectory()).toBe(true);
  });

  it('an entry larger than the whole bound is not written', async () => {
    const file = sameShape(freshDir('too-big'), 'big', 0);
    const cache = freshCache(1000);
    const load = await loadDataset(file, tiny, opts(tiny), cache);
    expect(load.report.notices).toEqual([]);
    expect((await cacheContents(cache.dir, CACHE_VERSION)).entries).toEqual([]);
  });

  it(`${TOKEN_CACHE_MAX_BYTES_ENV}: 4 GiB by default, 0 turns the cache off, anything else but bytes is an error naming it`, async () => {
    process.env.PEFT_STUDIO_HOME = freshDir('env-home');
    delete process.env[TOKEN_CACHE_MAX_BYTES_ENV];
    expect(defaultTokenCache()).toEqual(new TokenCache(join(process.env.PEFT_STUDIO_HOME, 'cache', 'tokenized'), DEFAULT_TOKEN_CACHE_MAX_BYTES));
    expect(DEFAULT_TOKEN_CACHE_MAX_BYTES).toBe(4 * 2 ** 30);
    process.env[TOKEN_CACHE_MAX_BYTES_ENV] = '123456';
    expect(defaultTokenCache()!.maxBytes).toBe(123456);
    process.env[TOKEN_CACHE_MAX_BYTES_ENV] = '0';
    expect(defaultTokenCache()).toBeNull();
    const file = writeRows(join(freshDir('off'), 'text.jsonl'), ROWS.text);
    expect((await loadDataset(file, tiny, opts(tiny))).tokenized.rows).toBe(3);
    expect((await loadDataset(file, tiny, opts(tiny))).tokenized.rows).toBe(3);
    process.env[TOKEN_CACHE_MAX_BYTES_ENV] = '4G';
    const error = await loadDataset(file, tiny, opts(tiny)).then(() => null, (e: Error) => e);
    expect(error).toBeInstanceOf(DataError);
    expect(error!.message).toBe(`${TOKEN_CACHE_MAX_BYTES_ENV}=4G: expected a whole number of bytes (e.g. 4294967296 for 4 GiB, or 0 to turn the token cache off)`);
  });

  it('lives in <studio home>/cache/tokenized by default', async () => {
    const home = freshDir('home');
    process.env.PEFT_STUDIO_HOME = home;
    const file = writeRows(join(freshDir('default'), 'text.jsonl'), ROWS.text);
    await loadDataset(file, tiny, opts(tiny));
    expect(readdirSync(join(home, 'cache', 'tokenized'))).toEqual([expect.stringMatching(/^v\d+-[0-9a-f]{64}\.tokens$/)]);
    expect((await loadDataset(file, tiny, opts(tiny))).tokenized).toEqual({ files: 0, rows: 0, cachedFiles: 1 });
  });
});

describe('peft-studio token-cache', () => {
  it('says where the cache is and what it holds, and --clear empties it', async () => {
    const home = freshDir('cli-home');
    process.env.PEFT_STUDIO_HOME = home;
    const dir = join(home, 'cache', 'tokenized');
    const empty = await cli(['token-cache']);
    expect(empty).toEqual({ code: 0, stdout: `${dir}: 0 entries, 0 B; bound 4.0 GiB (${TOKEN_CACHE_MAX_BYTES_ENV})\n`, stderr: '' });
    for (const format of ['text', 'chat']) await loadDataset(writeRows(join(freshDir('cli'), `${format}.jsonl`), ROWS[format]), demo, opts(demo));
    const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(bytes).toBeGreaterThan(1024); // a few KiB: said in KiB
    expect(bytes).toBeLessThan(1024 ** 2);
    const inKiB = `${(bytes / 1024).toFixed(1)} KiB`;
    const listed = await cli(['token-cache', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual({ dir, entries: 2, bytes, maxBytes: DEFAULT_TOKEN_CACHE_MAX_BYTES, staleFiles: 0 });
    process.env[TOKEN_CACHE_MAX_BYTES_ENV] = '0';
    expect((await cli(['token-cache'])).stdout).toBe(`${dir}: 2 entries, ${inKiB}; the cache is off (${TOKEN_CACHE_MAX_BYTES_ENV}=0)\n`);
    const cleared = await cli(['token-cache', '--clear']);
    expect(cleared).toEqual({ code: 0, stdout: `removed 2 files (${inKiB}) from ${dir}\n`, stderr: '' });
    expect(readdirSync(dir)).toEqual([]);
    const help = await cli(['token-cache', '--help']);
    expect(help.stdout).toContain('--clear');
    expect(help.stdout).toContain(`${TOKEN_CACHE_MAX_BYTES_ENV} bounds it`);
  });
});
