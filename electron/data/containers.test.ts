// Container readers: every row keeps the physical line it starts on, broken
// rows become problems with that line, and whole-file problems are errors
// naming the file.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDelimited, readDelimited } from './containers/csv.js';
import { readJsonArray } from './containers/json-array.js';
import { readJsonl } from './containers/jsonl.js';
import { parseContainer, readContainer } from './containers/read-file.js';
import { readPlainText } from './containers/text.js';

const lines = (read: { records: { line: number }[] }) => read.records.map((r) => r.line);

describe('JSONL', () => {
  it('keeps line numbers, skips blank lines, reports broken JSON by line', () => {
    const read = readJsonl('{"a":1}\n\n{"a":2}\r\n{"a":\n{"a":4}', 'f.jsonl');
    expect(read.records).toEqual([{ line: 1, value: { a: 1 } }, { line: 3, value: { a: 2 } }, { line: 5, value: { a: 4 } }]);
    expect(read.problems).toHaveLength(1);
    expect(read.problems[0]).toMatchObject({ source: 'f.jsonl:4', line: 4, kind: 'malformed' });
    expect(read.problems[0].reason).toMatch(/not valid JSON/);
  });
});

describe('JSON array', () => {
  it('gives each element the line it starts on, even spread over lines', () => {
    const text = '[\n  {"instruction": "a",\n   "output": "b"},\n  {"x": "[not, a, nesting}\\""},\n\n  {"y": [1, {"z": 2}]}\n]\n';
    const read = readJsonArray(text, 'f.json');
    expect(lines(read)).toEqual([2, 4, 6]);
    expect(read.records[1].value).toEqual({ x: '[not, a, nesting}"' });
    expect(read.records[2].value).toEqual({ y: [1, { z: 2 }] });
    expect(read.problems).toEqual([]);
  });

  it('skips a broken element with its line and keeps the others', () => {
    const read = readJsonArray('[{"a": 1},\n {"a": 2,},\n {"a": 3}]', 'f.json');
    expect(lines(read)).toEqual([1, 3]);
    expect(read.problems.map((p) => [p.source, p.kind])).toEqual([['f.json:2', 'malformed']]);
  });

  it('refuses a file that is not an array, or not closed', () => {
    expect(() => readJsonArray('\n"hello"', 'f.json')).toThrow(/f\.json:2: a \.json data file must hold one array/);
    expect(() => readJsonArray('[{"a": 1},\n{"a": "open', 'f.json')).toThrow(/f\.json:2: the JSON array is not closed/);
    expect(() => readJsonArray('[{"a": 1}] x', 'f.json')).toThrow(/after the closing "\]"/);
  });
});

describe('CSV / TSV (RFC 4180)', () => {
  it('parses quoted fields with commas, "" escapes and line breaks; lines are where rows start', () => {
    const text = 'instruction,output\r\n"Say ""hi""",hi\r\n"a, b","line one\nline two\nline three"\r\nplain,last\r\n';
    const read = readDelimited(text, 'f.csv', 'csv');
    expect(read.records).toEqual([
      { line: 2, value: { instruction: 'Say "hi"', output: 'hi' } },
      { line: 3, value: { instruction: 'a, b', output: 'line one\nline two\nline three' } },
      { line: 6, value: { instruction: 'plain', output: 'last' } },
    ]);
    expect(read.problems).toEqual([]);
  });

  it('keeps empty fields and a trailing empty field', () => {
    expect(parseDelimited('a,,c,\n', ',')).toEqual([{ line: 1, fields: ['a', '', 'c', ''] }]);
    expect(parseDelimited('"",x', ',')).toEqual([{ line: 1, fields: ['', 'x'] }]);
  });

  it('reports rows with the wrong field count, stray quotes and unclosed quotes by line', () => {
    const text = 'prompt,completion\nonly one field\nok,fine\nbad "quote",x\n"closed"junk,x\nx,"never closed\nmore';
    const read = readDelimited(text, 'f.csv', 'csv');
    expect(lines(read)).toEqual([3]);
    expect(read.problems.map((p) => [p.line, p.kind])).toEqual([[2, 'malformed'], [4, 'malformed'], [5, 'malformed'], [6, 'malformed']]);
    expect(read.problems[0].reason).toMatch(/has 1 field but the header has 2 \(prompt, completion\)/);
    expect(read.problems[1].reason).toMatch(/quote inside an unquoted field/);
    expect(read.problems[2].reason).toMatch(/after a closing quote/);
    expect(read.problems[3].reason).toMatch(/opened on line 6 is never closed/);
  });

  it('reads TSV with tabs (commas are data)', () => {
    const read = readDelimited('text\tlabel\nhello, world\t1\n"tab\tinside"\t2\n', 'f.tsv', 'tsv');
    expect(read.records.map((r) => r.value)).toEqual([{ text: 'hello, world', label: '1' }, { text: 'tab\tinside', label: '2' }]);
  });

  it('refuses a bad header, naming the file and line', () => {
    expect(() => readDelimited('', 'f.csv', 'csv')).toThrow(/f\.csv: the file is empty/);
    expect(() => readDelimited('a,,b\n1,2,3', 'f.csv', 'csv')).toThrow(/f\.csv:1: column 2 of the header row has no name/);
    expect(() => readDelimited('a,a\n1,2', 'f.csv', 'csv')).toThrow(/names the column "a" twice/);
  });
});

describe('plain text', () => {
  it('makes one document per paragraph, at its first line', () => {
    const read = readPlainText('First para\nsecond line\n\n\n  \nSecond para\r\n\nThird');
    expect(read.records).toEqual([
      { line: 1, value: { text: 'First para\nsecond line' } },
      { line: 6, value: { text: 'Second para' } },
      { line: 8, value: { text: 'Third' } },
    ]);
  });
});

describe('choosing the container', () => {
  it('goes by extension, and sniffs .json and unknown extensions', () => {
    expect(parseContainer('{"a":1}\n{"a":2}', 'x.json').kind).toBe('jsonl');
    expect(parseContainer('[{"a":1}]', 'x.json').kind).toBe('json-array');
    expect(parseContainer('[{"a":1}]', 'x.data').kind).toBe('json-array');
    expect(parseContainer('{"a":1}', 'x.ndjson').kind).toBe('jsonl');
    expect(parseContainer('a,b\n1,2', 'x.CSV').kind).toBe('csv');
    expect(parseContainer('a\tb\n1\t2', 'x.tsv').kind).toBe('tsv');
    expect(parseContainer('hello', 'x.md').kind).toBe('text');
    expect(() => parseContainer('hello', 'x.bin')).toThrow(/x\.bin: unknown data file type "\.bin"; use \.jsonl/);
  });

  it('names the file that cannot be read, and strips a byte order mark', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-containers-'));
    await expect(readContainer(join(dir, 'missing.jsonl'))).rejects.toThrow(`cannot read data file ${join(dir, 'missing.jsonl')}: no such file`);
    mkdirSync(join(dir, 'folder.jsonl'));
    await expect(readContainer(join(dir, 'folder.jsonl'))).rejects.toThrow(/it is a folder, not a file/);
    writeFileSync(join(dir, 'bom.csv'), '\ufeffprompt,completion\na,b\n');
    expect((await readContainer(join(dir, 'bom.csv'))).records[0].value).toEqual({ prompt: 'a', completion: 'b' });
  });
});
