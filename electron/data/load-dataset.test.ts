// The loader end to end on real files with the tiny model's byte-level BPE
// tokenizer (no chat template: the fallback template and the Alpaca
// prompt), plus the report, the preview and `data inspect`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelTokenizer } from '../models/tokenizer.js';
import { cli, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { TINY_BOS_ID, TINY_EOS_ID } from '../testing/tiny-tokenizer.js';
import { countTrainedTokens, DataError, IGNORE_INDEX, parseJsonl } from '../training/data.js';
import { ALPACA_PREAMBLE, ALPACA_PREAMBLE_WITH_INPUT } from './formats/alpaca.js';
import { loadDataset } from './load-dataset.js';
import type { DatasetOptions } from './options.js';
import { previewRow } from './preview.js';
import { lengthBins } from './report.js';

let tok: ModelTokenizer;
let modelDir: string;
let dir: string;
const VOCAB = 320;
const opts = (o: Partial<DatasetOptions> = {}): DatasetOptions => ({ format: 'auto', seqLen: 256, completionOnly: true, pack: false, vocabSize: VOCAB, ...o });
// rows hold Int32Arrays; compared as plain arrays (Array.from), never loosely
const trainedText = (ids: Int32Array, labels: Int32Array) => tok.decode(Array.from(ids).filter((_, i) => labels[i] !== IGNORE_INDEX && i > 0));
const maskedText = (ids: Int32Array, labels: Int32Array) => tok.decode(Array.from(ids).filter((_, i) => labels[i] === IGNORE_INDEX));

beforeAll(async () => {
  const model = await tinyModel({ seed: 5 });
  modelDir = model.dir;
  tok = await ModelTokenizer.load(modelDir);
  dir = tempDir('dataset');
});

describe('formats', () => {
  it('alpaca without a chat template: the Alpaca prompt, output and EOS trained', async () => {
    const file = writeJsonl(join(dir, 'alpaca.jsonl'), [
      { instruction: 'Name the capital of France.', input: '', output: 'Paris' },
      { instruction: 'Add the numbers.', input: '2 and 3', output: 'five' },
      { instruction: 'Greet.', output: 'Hello', system: 'You are kind.' },
    ]);
    const { examples, report } = await loadDataset(file, tok, opts());
    expect(report.format).toBe('alpaca');
    expect(report.formatDetected).toBe(true);
    expect(report.layouts).toEqual(['the Alpaca prompt as alpaca-lora writes it (the model has no chat template)']);
    const prompts = [
      `${ALPACA_PREAMBLE}\n\n### Instruction:\nName the capital of France.\n\n### Response:\n`,
      `${ALPACA_PREAMBLE_WITH_INPUT}\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n`,
      'You are kind.\n\n### Instruction:\nGreet.\n\n### Response:\n',
    ];
    const outputs = ['Paris', 'five', 'Hello'];
    examples.forEach((ex, i) => {
      expect(Array.from(ex.inputIds)).toEqual([TINY_BOS_ID, ...tok.encode(prompts[i] + outputs[i], { addSpecialTokens: false }), TINY_EOS_ID]);
      expect(trainedText(ex.inputIds, ex.labels)).toBe(`${outputs[i]}</s>`);
      expect(maskedText(ex.inputIds, ex.labels)).toBe(`<s>${prompts[i]}`);
      expect(ex.source).toBe(`${file}:${i + 1}`);
    });
  });

  it('chat without a chat template: the fallback template, announced in the report', async () => {
    const file = writeJsonl(join(dir, 'chat.jsonl'), [
      { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you' }] },
    ]);
    const { examples, report } = await loadDataset(file, tok, opts());
    expect(report.format).toBe('chat');
    expect(report.notices[0]).toMatch(/no chat_template.*fallback template/);
    const text = '<s>Be brief.\n\n### User:\nHi\n\n### Assistant:\nHello</s>\n\n### User:\nBye\n\n### Assistant:\nSee you</s>';
    const [ex] = examples;
    expect(Array.from(ex.inputIds)).toEqual(tok.encode(text, { addSpecialTokens: false }));
    expect(ex.inputIds[0]).toBe(TINY_BOS_ID);
    // both assistant turns with the EOS that closes them, nothing else
    const trained = Array.from(ex.inputIds).map((id, i) => (ex.labels[i] === IGNORE_INDEX ? null : id));
    const runs = tok.decode(trained.map((id) => id ?? 2), { skipSpecialTokens: false }).split(/(?:<pad>)+/).filter(Boolean);
    expect(runs).toEqual(['Hello</s>', 'See you</s>']);
  });

  it('completion: prompt + completion verbatim, completion and EOS trained', async () => {
    const file = writeJsonl(join(dir, 'completion.jsonl'), [{ prompt: 'Q: 2+2?\nA:', completion: ' 4' }]);
    const { examples, report } = await loadDataset(file, tok, opts());
    expect(report.format).toBe('completion');
    expect(trainedText(examples[0].inputIds, examples[0].labels)).toBe(' 4</s>');
    expect(maskedText(examples[0].inputIds, examples[0].labels)).toBe('<s>Q: 2+2?\nA:');
  });

  it('text rows give exactly what loadJsonl/parseJsonl gave, every token trained', async () => {
    const rows = [{ text: 'The model reads the text.' }, { text: 'Hello world! héllo 🙂' }];
    const file = writeJsonl(join(dir, 'text.jsonl'), rows);
    const { examples } = await loadDataset(file, tok, opts());
    const legacy = parseJsonl(rows.map((r) => JSON.stringify(r)).join('\n'), file, tok, { seqLen: 256, vocabSize: VOCAB });
    expect(examples).toEqual(legacy);
    expect(examples[0].labels).toEqual(examples[0].inputIds);
  });

  it('pre-tokenized rows keep their labels; ids outside the vocabulary are reported', async () => {
    const file = writeJsonl(join(dir, 'ids.jsonl'), [{ input_ids: [5, 6, 7], labels: [-100, -100, 7] }, { input_ids: [5, 999] }, { input_ids: [8, 9] }]);
    const { examples, report } = await loadDataset(file, tok, opts());
    expect(report.format).toBe('tokenized');
    expect(examples.map((e) => [Array.from(e.inputIds), Array.from(e.labels)])).toEqual([[[5, 6, 7], [-100, -100, 7]], [[8, 9], [8, 9]]]);
    expect(report.skipped).toEqual([{ source: `${file}:2`, line: 2, kind: 'vocabulary', reason: expect.stringMatching(/= 999 is outside the vocabulary \[0, 320\)/) }]);
  });

  it('trains every token with completionOnly off', async () => {
    const file = writeJsonl(join(dir, 'all.jsonl'), [{ prompt: 'Q:', completion: ' yes' }]);
    const { examples } = await loadDataset(file, tok, opts({ completionOnly: false }));
    expect(examples[0].labels).toEqual(examples[0].inputIds);
  });

  it('reads the same rows from CSV, TSV, a JSON array and JSONL', async () => {
    const rows = [{ instruction: 'Say "hi", twice', output: 'hi\nhi' }, { instruction: 'Count', output: 'one, two' }];
    const csv = join(dir, 'rows.csv');
    writeFileSync(csv, 'instruction,output\n"Say ""hi"", twice","hi\nhi"\nCount,"one, two"\n');
    const tsv = join(dir, 'rows.tsv');
    writeFileSync(tsv, 'instruction\toutput\n"Say ""hi"", twice"\t"hi\nhi"\nCount\tone, two\n');
    const json = join(dir, 'rows.json');
    writeFileSync(json, JSON.stringify(rows, null, 2));
    const jsonl = writeJsonl(join(dir, 'rows.jsonl'), rows);
    const ids = async (f: string) => (await loadDataset(f, tok, opts())).examples.map((e) => [e.inputIds, e.labels]);
    const expected = await ids(jsonl);
    for (const f of [csv, tsv, json]) expect(await ids(f)).toEqual(expected);
    expect((await loadDataset(csv, tok, opts())).examples.map((e) => e.source)).toEqual([`${csv}:2`, `${csv}:4`]);
    expect((await loadDataset(json, tok, opts())).examples.map((e) => e.source)).toEqual([`${json}:2`, `${json}:6`]);
  });

  it('reads chat rows from a CSV cell holding JSON, and paragraphs from .txt', async () => {
    const csv = join(dir, 'chat.csv');
    writeFileSync(csv, 'messages\n"[{""role"": ""user"", ""content"": ""Hi""}, {""role"": ""assistant"", ""content"": ""Yo""}]"\n');
    const { examples, report } = await loadDataset(csv, tok, opts());
    expect(report.format).toBe('chat');
    expect(trainedText(examples[0].inputIds, examples[0].labels)).toBe('Yo</s>');
    const txt = join(dir, 'notes.txt');
    writeFileSync(txt, 'First note.\n\nSecond note,\ntwo lines.\n');
    const text = await loadDataset(txt, tok, opts());
    expect(text.report).toMatchObject({ container: 'text', format: 'text' });
    expect(text.examples.map((e) => [e.source, tok.decode(e.inputIds)])).toEqual([[`${txt}:1`, '<s>First note.</s>'], [`${txt}:3`, '<s>Second note,\ntwo lines.</s>']]);
  });

  it('detects by majority and can be told the format', async () => {
    const file = writeJsonl(join(dir, 'mixed.jsonl'), [{ text: 'stray' }, { prompt: 'a', completion: 'b' }, { prompt: 'c', completion: 'd' }]);
    const auto = await loadDataset(file, tok, opts());
    expect(auto.report.format).toBe('completion');
    expect(auto.report.skipped.map((p) => [p.line, p.kind])).toEqual([[1, 'missing-field']]);
    const forced = await loadDataset(file, tok, opts({ format: 'text' }));
    expect(forced.report.formatDetected).toBe(false);
    expect(forced.report.rows.used).toBe(1);
    const unknown = writeJsonl(join(dir, 'unknown.jsonl'), [{ question: 'q', answer: 'a' }]);
    await expect(loadDataset(unknown, tok, opts())).rejects.toThrow(/cannot tell the dataset format: its rows have the fields question, answer/);
  });
});

describe('bad rows, truncation, packing and the report', () => {
  let file: string;
  beforeAll(() => {
    file = join(dir, 'messy.jsonl');
    writeFileSync(file, [
      JSON.stringify({ prompt: 'Q: one', completion: ' A one' }), // 1 ok
      '{"prompt": "broken"', // 2 malformed
      JSON.stringify({ prompt: 'Q: two' }), // 3 missing completion
      JSON.stringify({ prompt: 'Q: three', completion: 3 }), // 4 wrong type
      JSON.stringify({ prompt: 'Q: four', completion: '  ' }), // 5 empty
      JSON.stringify({ prompt: 'x '.repeat(200), completion: 'late' }), // 6 too long, nothing to learn
      JSON.stringify({ prompt: 'Q:', completion: ' the model reads the text one token at a time'.repeat(3) }), // 7 truncated
      '',
      JSON.stringify({ prompt: 'Q: eight', completion: ' A eight' }), // 9 ok
    ].join('\n'));
  });

  it('skips bad rows with line numbers, kinds and reasons', async () => {
    const { report } = await loadDataset(file, tok, opts({ seqLen: 24 }));
    expect(report.rows).toEqual({ total: 8, used: 3, skipped: 5 });
    expect(report.skipped.map((p) => [p.source, p.kind])).toEqual([
      [`${file}:2`, 'malformed'], [`${file}:3`, 'missing-field'], [`${file}:4`, 'wrong-type'], [`${file}:5`, 'empty'], [`${file}:6`, 'nothing-to-learn'],
    ]);
    expect(report.skipped[1].reason).toBe('missing "completion" (fields found: prompt)');
    expect(report.skipped[2].reason).toBe('"completion" must be a string, got 3');
    expect(report.skipped[4].reason).toMatch(/too long: \d+ tokens, and the first 24 \(the sequence length\) hold no trained token/);
    expect(report.skippedByKind).toEqual({ malformed: 1, 'missing-field': 1, 'wrong-type': 1, empty: 1, 'nothing-to-learn': 1 });
  });

  it('counts truncations, lengths and trained tokens', async () => {
    const { examples, report } = await loadDataset(file, tok, opts({ seqLen: 24 }));
    const full = (p: string, c: string) => 1 + tok.encode(p + c, { addSpecialTokens: false }).length + 1;
    const long = ' the model reads the text one token at a time'.repeat(3);
    const lengths = [full('Q: one', ' A one'), full('Q:', long), full('Q: eight', ' A eight')];
    expect(lengths[1]).toBeGreaterThan(24);
    expect(report.truncation).toEqual({ rows: 1, tokensDropped: lengths[1] - 24 });
    expect(examples.map((e) => e.inputIds.length)).toEqual([lengths[0], 24, lengths[2]]);
    expect(report.lengths).toMatchObject({ min: Math.min(...lengths), max: Math.max(...lengths), median: [...lengths].sort((a, b) => a - b)[1] });
    expect(report.lengths.bins).toEqual(lengthBins(lengths));
    expect(report.tokens.total).toBe(lengths[0] + 24 + lengths[2]);
    // trained = tokens of the completion + EOS (all at positions >= 1)
    const trained = (c: string, p: string) => full(p, c) - 1 - tok.encode(p, { addSpecialTokens: false }).length;
    expect(report.tokens.trained).toBe(trained(' A one', 'Q: one') + (24 - 1 - tok.encode('Q:', { addSpecialTokens: false }).length) + trained(' A eight', 'Q: eight'));
  });

  it('packs into rows of at most seqLen with segments and restarting positions', async () => {
    const rows = Array.from({ length: 7 }, (_, i) => ({ text: `note ${i}${' and more'.repeat(i)}` }));
    const f = writeJsonl(join(dir, 'pack.jsonl'), rows);
    const plain = await loadDataset(f, tok, opts({ seqLen: 32 }));
    const packed = await loadDataset(f, tok, opts({ seqLen: 32, pack: true }));
    // greedy in order, computed here from the unpacked lengths
    const groups: number[][] = [];
    let used = Infinity;
    plain.examples.forEach((e, i) => {
      if (used + e.inputIds.length > 32) groups.push([]), (used = 0);
      groups[groups.length - 1].push(i);
      used += e.inputIds.length;
    });
    expect(packed.examples.length).toBe(groups.length);
    expect(packed.report.examples).toBe(groups.length);
    expect(packed.report.packedRows).toBe(groups.filter((g) => g.length > 1).length);
    packed.examples.forEach((row, r) => {
      const docs = groups[r].map((i) => plain.examples[i]);
      expect(Array.from(row.inputIds)).toEqual(docs.flatMap((d) => Array.from(d.inputIds)));
      expect(Array.from(row.labels)).toEqual(docs.flatMap((d) => Array.from(d.labels)));
      expect(Array.from(row.segments!)).toEqual(docs.flatMap((d, k) => Array.from(d.inputIds, () => k)));
      expect(Array.from(row.positions!)).toEqual(docs.flatMap((d) => Array.from(d.inputIds, (_, t) => t)));
      expect(row.documents).toEqual(docs.map((d) => d.source));
      expect(row.inputIds.length).toBeLessThanOrEqual(32);
    });
    // the seam is not a prediction: packed trained tokens = unpacked ones
    expect(packed.report.tokens.trained).toBe(plain.examples.reduce((n, e) => n + countTrainedTokens(e.labels), 0));
    expect(packed.report.tokens.trained).toBe(plain.report.tokens.trained);
  });

  it('is an error naming the file and the first reasons when no row is usable', async () => {
    const f = join(dir, 'allbad.jsonl');
    writeFileSync(f, '{"prompt": "a"}\nnot json\n');
    const err = await loadDataset(f, tok, opts({ format: 'completion' })).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: none of its 2 rows can be used`));
    expect(err.message).toContain(`${f}:1: missing "completion"`);
    expect(err.message).toContain(`${f}:2: not valid JSON`);
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    await expect(loadDataset(empty, tok, opts({ format: 'text' }))).rejects.toThrow(/no rows \(the file is empty/);
  });

  it('names the broken lines when no line of the file parses, as it does when some do', async () => {
    const f = join(dir, 'all-broken.jsonl');
    writeFileSync(f, '{"prompt": "a", "completion": oops}\n\n{"prompt": "b",\nnot json\n');
    const err = await loadDataset(f, tok, opts()).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: none of its 3 rows can be parsed`));
    // the same "file:line: not valid JSON (...)" as a broken line among good rows, blank line 2 not counted
    for (const line of [1, 3, 4]) expect(err.message).toContain(`${f}:${line}: not valid JSON (`);
    expect(err.message).not.toContain(`${f}:2:`);
    // auto-detection of an empty file says it is empty, not that its rows are unreadable
    const empty = join(dir, 'empty-auto.jsonl');
    writeFileSync(empty, '\n');
    await expect(loadDataset(empty, tok, opts())).rejects.toThrow(/empty-auto\.jsonl: no rows \(the file is empty/);
  });

  it('has fixed power-of-two length bins', () => {
    const bins = lengthBins([1, 16, 17, 100, 9000]);
    expect(bins[0]).toEqual({ min: 1, max: 16, count: 2 });
    expect(bins[1]).toEqual({ min: 17, max: 32, count: 1 });
    expect(bins[3]).toEqual({ min: 65, max: 128, count: 1 });
    expect(bins[bins.length - 1]).toEqual({ min: 8193, max: null, count: 1 });
  });
});

describe('mask preview', () => {
  it('lists every token with its piece and whether it is trained', async () => {
    const file = writeJsonl(join(dir, 'preview.jsonl'), [{ prompt: 'Hi', completion: ' there' }, { prompt: 'x' }]);
    const p = await previewRow(file, 1, tok, opts());
    expect(p).toMatchObject({ row: 1, source: `${file}:1`, format: 'completion', status: 'used', text: 'Hi there', truncated: 0 });
    expect(p.tokens.map((t) => t.piece).join('')).toBe('<s>Hi there</s>');
    expect(p.tokens[0]).toEqual({ id: TINY_BOS_ID, piece: '<s>', trained: false });
    expect(p.tokens[p.tokens.length - 1]).toEqual({ id: TINY_EOS_ID, piece: '</s>', trained: true });
    expect(p.tokens.filter((t) => t.trained).map((t) => t.piece).join('')).toBe(' there</s>');
    expect(p.trainedTokens).toBe(p.tokens.filter((t) => t.trained).length);
    const { examples } = await loadDataset(file, tok, opts());
    expect(p.tokens.map((t) => t.id)).toEqual(Array.from(examples[0].inputIds));

    const bad = await previewRow(file, 2, tok, opts());
    expect(bad).toMatchObject({ status: 'skipped', kind: 'missing-field', reason: 'missing "completion" (fields found: prompt)', tokens: [] });
    await expect(previewRow(file, 3, tok, opts())).rejects.toThrow(/has 2 rows; row 3 does not exist/);
  });
});

describe('peft-studio data inspect', () => {
  it('prints the report as JSON, warns about skipped rows, and previews a row', async () => {
    const file = writeJsonl(join(dir, 'cli.jsonl'), [{ instruction: 'Greet', output: 'Hello' }, { instruction: 'Nothing' }]);
    const r = await cli(['data', 'inspect', file, '--model', modelDir, '--seq-len', '256']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ format: 'alpaca', seqLen: 256, completionOnly: true, rows: { total: 2, used: 1, skipped: 1 } });
    expect(r.stderr).toContain(`warning: 1 of 2 rows skipped:\n  ${file}:2: missing "output" (fields found: instruction)\n`);
    // the skipped-rows notice is printed once, as the warning above, not again as a note
    expect(r.stderr).not.toContain('note: 1 of 2 rows skipped');

    const withRow = await cli(['data', 'inspect', file, '--model', modelDir, '--row', '1', '--all-tokens', '--pack', '--format', 'alpaca']);
    expect(withRow.code, withRow.stderr).toBe(0);
    const { report: rep, preview } = JSON.parse(withRow.stdout);
    expect(rep).toMatchObject({ completionOnly: false, pack: true, formatDetected: false });
    expect(preview.tokens.slice(1).every((t: { trained: boolean }) => t.trained)).toBe(true);
  });

  it('gives one clear line for a bad path, and a usage error for a bad action', async () => {
    const missing = join(dir, 'nope.jsonl');
    const r = await cli(['data', 'inspect', missing, '--model', modelDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`peft-studio: cannot read data file ${missing}: no such file\n`);
    const u = await cli(['data', 'check', missing, '--model', modelDir]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown data action 'check'/);
    const noModel = await cli(['data', 'inspect', missing, '--model', join(dir, 'no-model')]);
    expect(noModel.stderr).toMatch(/model folder .*no-model does not exist/);
  });
});

describe('missing and null fields', () => {
  it('a null field is called null, and a chat row without either list names both', async () => {
    const nulls = writeJsonl(join(dir, 'nulls.jsonl'), [
      { prompt: null, completion: 'b' },
      { prompt: 'a', completion: 'b' },
    ]);
    const { report } = await loadDataset(nulls, tok, opts({ format: 'completion' }));
    expect(report.skipped.map((p) => [p.line, p.kind, p.reason])).toEqual([[1, 'missing-field', '"prompt" is null; it must be a string']]);

    const chat = writeJsonl(join(dir, 'chat-missing.jsonl'), [
      { turns: [{ role: 'user', content: 'hi' }] },
      { messages: null },
      { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ]);
    const read = await loadDataset(chat, tok, opts({ format: 'chat' }));
    expect(read.report.skipped.map((p) => p.reason)).toEqual([
      'missing "messages" (OpenAI style: [{"role", "content"}]), "conversations" (ShareGPT: [{"from", "value"}]) or "prompt" and "completion" as lists of messages (fields found: turns)',
      '"messages" is null; it must be an array',
    ]);
  });
});
