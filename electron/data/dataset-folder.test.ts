// A dataset given as a folder, laid out as the Hugging Face hub serves
// datasets: split by file or folder name, in shards, with a dataset card and
// metadata beside the data. The rows of a folder must be exactly the rows of
// its files read one by one, in shard order; its fingerprint must follow the
// files' contents and names, not where the folder lies.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelTokenizer } from '../models/tokenizer.js';
import { tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { DataError } from '../training/data.js';
import { datasetFiles, splitOfPath } from './containers/dataset-folder.js';
import { datasetSha256 } from './dataset-fingerprint.js';
import { loadDataset } from './load-dataset.js';
import type { DatasetOptions } from './options.js';
import { previewRow } from './preview.js';
import { utf8, writeParquet } from './testing/parquet-writer.js';

let tok: ModelTokenizer;
const opts = (o: Partial<DatasetOptions> = {}): DatasetOptions => ({ format: 'auto', seqLen: 256, completionOnly: true, pack: false, vocabSize: 320, ...o });

beforeAll(async () => {
  tok = await ModelTokenizer.load((await tinyModel({ seed: 5 })).dir);
});

const alpacaRows = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ instruction: `Say ${tag} ${i}.`, input: '', output: `${tag} ${i}` }));

/** A hub-style dataset folder: data/{split}-0000k-of-0000n.jsonl, a card, metadata, a .git folder. */
function hubFolder(name: string, shards: Record<string, number[]>): string {
  const root = tempDir(name);
  mkdirSync(join(root, 'data'));
  mkdirSync(join(root, '.git'));
  writeFileSync(join(root, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(root, 'README.md'), '---\nconfigs:\n- config_name: default\n---\n# A dataset card\n');
  writeFileSync(join(root, '.gitattributes'), '*.parquet filter=lfs\n');
  writeFileSync(join(root, 'dataset_info.json'), JSON.stringify({ features: {} }));
  for (const [split, sizes] of Object.entries(shards)) {
    sizes.forEach((n, k) => writeJsonl(join(root, 'data', `${split}-${String(k).padStart(5, '0')}-of-${String(sizes.length).padStart(5, '0')}.jsonl`), alpacaRows(`${split}${k}`, n)));
  }
  return root;
}

describe('split names (the hub\'s keywords, delimited by non-word characters)', () => {
  it.each([
    ['train.jsonl', 'train'],
    ['data/train-00000-of-00004.parquet', 'train'],
    ['training_set.csv.gz', 'train'],
    ['test-file.csv', 'test'],
    ['testfile.csv', null],
    ['my_valid.jsonl', 'validation'],
    ['dev.jsonl', 'validation'],
    ['val.jsonl', 'validation'],
    ['interval.jsonl', null],
    ['eval/0000.parquet', 'test'],
    ['default/train/0000.parquet', 'train'],
    ['validation/train.jsonl', 'validation'], // a folder's name goes first
    ['eval/train/0000.parquet', 'test'], // the outermost folder first
    ['data.csv', null],
    ['train2.jsonl', 'train'],
    ['Train 1.jsonl', 'train'],
  ])('%s -> %s', (path, split) => {
    expect(splitOfPath(path)).toBe(split);
  });
});

describe('which files a folder stands for', () => {
  it('the train split in shard order (2 before 10), without the card, metadata, dot files and other splits', () => {
    const root = hubFolder('shards', { train: Array(11).fill(1), validation: [2], test: [1] });
    const d = datasetFiles(root, 'train');
    expect(d.split).toBe('train');
    expect(d.files.map((f) => f.slice(root.length + 1))).toEqual(Array.from({ length: 11 }, (_, k) => `data/train-${String(k).padStart(5, '0')}-of-00011.jsonl`));
    expect(Object.keys(d.splits).sort()).toEqual(['test', 'train', 'validation']);
    expect(d.notes).toEqual(['its validation split (1 file) and test split (1 file) are not trained on; to evaluate on the validation split, give this folder as the evaluation data too']);
  });

  it('evaluation reads the validation split, else the test split (said)', () => {
    const both = hubFolder('evalsplit', { train: [1], validation: [2], test: [1] });
    expect(datasetFiles(both, 'eval').files).toEqual([join(both, 'data', 'validation-00000-of-00001.jsonl')]);
    const testOnly = hubFolder('testonly', { train: [1], test: [1] });
    const d = datasetFiles(testOnly, 'eval');
    expect(d.split).toBe('test');
    expect(d.notes[0]).toMatch(/no validation split; evaluating on the test split/);
  });

  it('a folder that names no split is one dataset, in natural order; a file stands for itself', () => {
    const root = tempDir('unsplit');
    for (const k of [10, 2, 1]) writeJsonl(join(root, `part-${k}.jsonl`), alpacaRows(`p${k}`, 1));
    writeJsonl(join(root, 'part-a.jsonl'), alpacaRows('a', 1));
    const d = datasetFiles(root, 'eval');
    expect(d.split).toBeNull();
    expect(d.files).toEqual(['part-1.jsonl', 'part-2.jsonl', 'part-10.jsonl', 'part-a.jsonl'].map((f) => join(root, f)));
    expect(datasetFiles(join(root, 'part-a.jsonl')).files).toEqual([join(root, 'part-a.jsonl')]);
  });

  it('files named after no split are passed over, and said so', () => {
    const root = hubFolder('extra', { train: [1] });
    writeJsonl(join(root, 'data', 'notes.jsonl'), alpacaRows('n', 1));
    const d = datasetFiles(root, 'train');
    expect(d.files).toHaveLength(1);
    expect(d.notes[d.notes.length - 1]).toMatch(/1 file named after no split passed over \(data\/notes\.jsonl\)/);
  });

  it('refusals name the folder and what to do', () => {
    const noTrain = hubFolder('notrain', { validation: [1], test: [1] });
    expect(() => datasetFiles(noTrain, 'train')).toThrow(/split into validation \(1 file\), test \(1 file\), but there is no train split/);
    const noEval = hubFolder('noeval', { train: [1] });
    expect(() => datasetFiles(noEval, 'eval')).toThrow(/no validation or test split/);
    const arrow = tempDir('arrow');
    writeFileSync(join(arrow, 'data-00000-of-00001.arrow'), 'ARROW1');
    writeFileSync(join(arrow, 'state.json'), '{}');
    expect(() => datasetFiles(arrow)).toThrow(/holds no data file .*1 Arrow file \(written by the datasets library's save_to_disk\)/);
    const dangling = tempDir('dangling');
    symlinkSync('../blobs/missing', join(dangling, 'train.jsonl'));
    expect(() => datasetFiles(dangling)).toThrow(DataError);
    expect(() => datasetFiles(dangling)).toThrow(/train\.jsonl: is a link to a file that is not there/);
  });

  it('follows links, as the hub cache lays snapshots out (files linked to blobs)', () => {
    const root = tempDir('linked');
    mkdirSync(join(root, 'blobs'));
    mkdirSync(join(root, 'snap'));
    writeJsonl(join(root, 'blobs', 'abc123'), alpacaRows('x', 2));
    symlinkSync('../blobs/abc123', join(root, 'snap', 'train.jsonl'));
    expect(datasetFiles(join(root, 'snap')).files).toEqual([join(root, 'snap', 'train.jsonl')]);
  });
});

describe('what would mix different data is refused or passed over (review)', () => {
  it("push_to_hub's shard names give the split exactly: names of the dataset's own are listed, with the pattern that picks one", () => {
    const root = tempDir('ultrachat');
    mkdirSync(join(root, 'data'));
    for (const split of ['train_sft', 'train_gen', 'test_sft']) writeJsonl(join(root, 'data', `${split}-00000-of-00001.jsonl`), alpacaRows(split, 1));
    expect(() => datasetFiles(root, 'train')).toThrow(
      `${root}: the folder's files are split into test_sft (1 file), train_gen (1 file), train_sft (1 file), but there is no train split; give the files of the split you mean as a pattern, e.g. --data '${root}/data/train_gen-*'`,
    );
    // the data/ folder given itself: the same exact names (review: its shards were taken by keyword, train_sft + train_gen)
    expect(() => datasetFiles(join(root, 'data'), 'train')).toThrow(`there is no train split; give the files of the split you mean as a pattern, e.g. --data '${root}/data/train_gen-*'`);
    expect(() => datasetFiles(join(root, 'data'), 'eval')).toThrow(`there is no validation or test split; give the files of the split you mean as a pattern, e.g. --data '${root}/data/test_sft-*'`);
    const picked = datasetFiles(join(root, 'data', 'train_sft-*'));
    expect(picked.files).toEqual([join(root, 'data', 'train_sft-00000-of-00001.jsonl')]);
    expect(picked.split).toBeNull();
    // and with a plain "train" among them, that is the train split, not train_sft or train_gen
    writeJsonl(join(root, 'data', 'train-00000-of-00001.jsonl'), alpacaRows('t', 1));
    expect(datasetFiles(root, 'train').files).toEqual([join(root, 'data', 'train-00000-of-00001.jsonl')]);
  });

  it('a split spread over several subsets (main/, socratic/) is refused, naming them', () => {
    const root = tempDir('subsets');
    for (const subset of ['main', 'socratic']) {
      mkdirSync(join(root, subset));
      writeJsonl(join(root, subset, 'train-00000-of-00001.jsonl'), alpacaRows(subset, 1));
    }
    expect(() => datasetFiles(root)).toThrow(`${root}: holds several subsets (main, socratic), each with its own train split; reading them together would mix different datasets. Give the folder of the subset you mean, e.g. ${join(root, 'main')}`);
    expect(datasetFiles(join(root, 'main')).files).toHaveLength(1);
    // one subset in the parquet-converted layout (default/train/0000.parquet) is fine
    const converted = tempDir('converted');
    mkdirSync(join(converted, 'default', 'train'), { recursive: true });
    writeJsonl(join(converted, 'default', 'train', '0000.jsonl'), alpacaRows('c', 1));
    expect(datasetFiles(converted).split).toBe('train');
  });

  it('the same rows in two file types are read once: the most common type, the others said', () => {
    const root = tempDir('twotypes');
    const file = writeJsonl(join(root, 'train.jsonl'), alpacaRows('a', 2));
    writeFileSync(join(root, 'train.jsonl.gz'), gzipSync(readFileSync(file)));
    const d = datasetFiles(root);
    expect(d.files).toEqual([file]);
    expect(d.notes).toEqual(['1 file of another type passed over (train.jsonl.gz): one type is read, the most common, so the same rows in two formats are not read twice']);
  });

  it('a run folder inside a dataset folder is not data; a dangling link to no data file is no error; a link loop is named', () => {
    const root = tempDir('with-run');
    writeJsonl(join(root, 'rows.jsonl'), alpacaRows('r', 1));
    mkdirSync(join(root, 'run', 'checkpoints', 'step-2'), { recursive: true });
    writeFileSync(join(root, 'run', 'run.json'), '{}');
    writeFileSync(join(root, 'run', 'metrics.jsonl'), '{"step": 1}\n');
    symlinkSync('gone.md', join(root, 'NOTES.md'));
    const d = datasetFiles(root);
    expect(d.files).toEqual([join(root, 'rows.jsonl')]);
    expect(d.notes).toEqual(['1 run or adapter folder inside it passed over (run): not data']);
    symlinkSync('..', join(root, 'up'));
    expect(() => datasetFiles(root)).toThrow(`${join(root, 'up')}: links back to a folder already read`);
    const rootLink = tempDir('root-link');
    writeJsonl(join(rootLink, 'rows.jsonl'), alpacaRows('r', 1));
    symlinkSync('/', join(rootLink, 'slash'));
    expect(() => datasetFiles(rootLink)).toThrow(`${join(rootLink, 'slash')}: links back to a folder already read (/)`);
  });

  it('a pattern stands for the files it matches (* within a name, ** for any folders), in natural order', () => {
    const root = tempDir('pattern');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    for (const f of ['x-10.jsonl', 'x-2.jsonl', 'y-1.jsonl']) writeJsonl(join(root, f), alpacaRows(f, 1));
    writeJsonl(join(root, 'a', 'b', 'x-3.jsonl'), alpacaRows('deep', 1));
    expect(datasetFiles(join(root, 'x-*.jsonl')).files).toEqual(['x-2.jsonl', 'x-10.jsonl'].map((f) => join(root, f)));
    expect(datasetFiles(join(root, '**', 'x-?.jsonl')).files).toEqual(['a/b/x-3.jsonl', 'x-2.jsonl'].map((f) => join(root, f)));
    // a run folder under the pattern's folder is not data, as in a folder walk (closing read)
    mkdirSync(join(root, 'run'));
    writeFileSync(join(root, 'run', 'run.json'), '{}');
    writeJsonl(join(root, 'run', 'x-4.jsonl'), alpacaRows('run', 1));
    expect(datasetFiles(join(root, '**', 'x-?.jsonl')).files).toEqual(['a/b/x-3.jsonl', 'x-2.jsonl'].map((f) => join(root, f)));
    expect(() => datasetFiles(join(root, 'z-*.jsonl'))).toThrow(`${join(root, 'z-*.jsonl')}: matches no data file`);
    // a pattern without ** reads its own folder only: a deep or huge folder beside it does not matter (review)
    let deep = join(root, 'deep');
    for (let i = 0; i < 10; i++) mkdirSync((deep = join(deep, `d${i}`)), { recursive: true });
    expect(datasetFiles(join(root, 'x-*.jsonl')).files).toHaveLength(2);
    expect(() => datasetFiles(join(root, '**', 'x-*.jsonl'))).toThrow('** reaches folders more than 6 levels deep');
  });
});

describe('loading a folder', () => {
  it('its rows are its split\'s files read one by one, in order, each row named by its own file', async () => {
    const root = hubFolder('load', { train: [3, 2, 4], validation: [2] });
    const { examples, report } = await loadDataset(root, tok, opts());
    const one: typeof examples = [];
    for (const f of datasetFiles(root).files) one.push(...(await loadDataset(f, tok, opts())).examples);
    expect(examples).toEqual(one);
    expect(examples).toHaveLength(9);
    expect(examples[3].source).toBe(`${join(root, 'data', 'train-00001-of-00003.jsonl')}:1`);
    expect(report.files.map((f) => f.rows)).toEqual([3, 2, 4]);
    expect(report.split).toBe('train');
    expect(report.rows).toEqual({ total: 9, used: 9, skipped: 0 });
    expect(report.notices.slice(0, 2)).toEqual([
      `${root}: read its train split, 3 files (data/train-00000-of-00003.jsonl ... data/train-00002-of-00003.jsonl)`,
      `${root}: its validation split (1 file) is not trained on; to evaluate on the validation split, give this folder as the evaluation data too`,
    ]);
    const evalSet = await loadDataset(root, tok, opts({ role: 'eval' }));
    expect(evalSet.examples.map((e) => e.source)).toEqual([1, 2].map((l) => `${join(root, 'data', 'validation-00000-of-00001.jsonl')}:${l}`));
  });

  it('a bad row is named by its shard and line; an empty shard is no error', async () => {
    const root = tempDir('badrow');
    writeJsonl(join(root, 'train-1.jsonl'), alpacaRows('a', 2));
    writeFileSync(join(root, 'train-2.jsonl'), '');
    writeFileSync(join(root, 'train-3.jsonl'), `${JSON.stringify(alpacaRows('c', 1)[0])}\n{"instruction": "no output"}\n`);
    const { report } = await loadDataset(root, tok, opts());
    expect(report.rows).toEqual({ total: 4, used: 3, skipped: 1 });
    expect(report.skipped[0].source).toBe(`${join(root, 'train-3.jsonl')}:2`);
  });

  it('shards of different formats are refused, naming both files', async () => {
    const root = tempDir('mixed');
    writeJsonl(join(root, 'a.jsonl'), alpacaRows('a', 1));
    writeJsonl(join(root, 'b.jsonl'), [{ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }]);
    await expect(loadDataset(root, tok, opts())).rejects.toThrow(`${join(root, 'b.jsonl')}: its rows are chat rows, but ${join(root, 'a.jsonl')}'s are alpaca rows`);
  });

  it('Parquet shards written by the Arrow writer read as one dataset', async () => {
    const root = tempDir('parquet-shards');
    mkdirSync(join(root, 'data'));
    const rows = [...alpacaRows('p', 5)];
    const shard = (file: string, part: typeof rows) =>
      writeParquet(join(root, 'data', file), {
        instruction: { values: part.map((r) => r.instruction), type: utf8() },
        input: { values: part.map((r) => r.input), type: utf8() },
        output: { values: part.map((r) => r.output), type: utf8() },
      });
    shard('train-00000-of-00002.parquet', rows.slice(0, 3));
    shard('train-00001-of-00002.parquet', rows.slice(3));
    const asJsonl = writeJsonl(join(tempDir('parquet-jsonl'), 'all.jsonl'), rows);
    const folder = await loadDataset(root, tok, opts());
    const file = await loadDataset(asJsonl, tok, opts());
    expect(folder.examples.map((e) => [e.inputIds, e.labels])).toEqual(file.examples.map((e) => [e.inputIds, e.labels]));
    expect(folder.report.container).toBe('parquet');
  });

  it('a folder none of whose rows parses says so (no format to name)', async () => {
    const root = tempDir('unparseable');
    writeFileSync(join(root, 'a.jsonl'), '{broken\n');
    writeFileSync(join(root, 'b.jsonl'), 'not json\n');
    await expect(loadDataset(root, tok, opts())).rejects.toThrow(`${root}: not one of its 2 rows could be read as a row. First problems: ${join(root, 'a.jsonl')}:1: `);
  });

  it('a folder whose files hold no row says so', async () => {
    const root = tempDir('emptyfolder');
    writeFileSync(join(root, 'a.jsonl'), '');
    writeFileSync(join(root, 'b.jsonl'), '\n');
    await expect(loadDataset(root, tok, opts())).rejects.toThrow(`${root}: no rows (its files are empty or only blank lines)`);
  });
});

describe('previewing a folder\'s row', () => {
  it('rows are numbered on through the files: row 4 is the second file\'s first row', async () => {
    const root = hubFolder('preview', { train: [3, 2] });
    const second = join(root, 'data', 'train-00001-of-00002.jsonl');
    const viaFolder = await previewRow(root, 4, tok, opts());
    const viaFile = await previewRow(second, 1, tok, opts());
    expect(viaFolder.source).toBe(`${second}:1`);
    expect(viaFolder.tokens).toEqual(viaFile.tokens);
    expect(viaFolder.row).toBe(4);
    await expect(previewRow(root, 6, tok, opts())).rejects.toThrow(`${root}: has 5 rows; row 6 does not exist`);
  });
});

describe('the fingerprint a resume checks', () => {
  const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

  it('a file: the sha256 of its bytes', async () => {
    const file = writeJsonl(join(tempDir('fp-file'), 'rows.jsonl'), alpacaRows('f', 2));
    expect(await datasetSha256(file)).toBe(sha(readFileSync(file)));
  });

  it('a folder: its files\' names under it and their sha256, in order; the same wherever the folder lies', async () => {
    const root = hubFolder('fp', { train: [2, 1], validation: [1] });
    const files = datasetFiles(root).files;
    const expected = sha(files.map((f) => `${f.slice(root.length + 1)}\0${sha(readFileSync(f))}\n`).join(''));
    expect(await datasetSha256(root)).toBe(expected);
    const moved = join(tempDir('fp-moved'), 'elsewhere');
    cpSync(root, moved, { recursive: true });
    expect(await datasetSha256(moved)).toBe(expected);
    // the validation split is not part of the training data's fingerprint
    writeJsonl(join(moved, 'data', 'validation-00000-of-00001.jsonl'), alpacaRows('changed', 3));
    expect(await datasetSha256(moved)).toBe(expected);
    expect(await datasetSha256(moved, 'eval')).not.toBe(await datasetSha256(root, 'eval'));
    // a changed shard, a renamed shard
    writeJsonl(join(moved, 'data', 'train-00001-of-00002.jsonl'), alpacaRows('changed', 1));
    expect(await datasetSha256(moved)).not.toBe(expected);
    cpSync(root, moved, { recursive: true });
    expect(await datasetSha256(moved)).toBe(expected);
    renameSync(join(moved, 'data', 'train-00001-of-00002.jsonl'), join(moved, 'data', 'train-00002-of-00002.jsonl'));
    expect(await datasetSha256(moved)).not.toBe(expected);
  });
});
