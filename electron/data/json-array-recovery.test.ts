// The JSON-array scanner on damaged files: a stray closing bracket is one
// skipped row and the scan moves on (it used to loop forever on it), random
// damage never hangs it nor makes it throw anything but a DataError, and a
// .json file holding one pretty-printed object gets an error that says so.
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { DataError } from '../training/data.js';
import { readJsonArray } from './containers/json-array.js';
import { parseContainer } from './containers/read-file.js';
import type { ContainerRead } from './containers/records.js';

/**
 * Runs a synchronous call under a watchdog: vm's timeout interrupts an
 * endless loop (the bug this file guards against) instead of hanging the run.
 */
function withinTime<T>(ms: number, call: () => T): T {
  return vm.runInNewContext('call()', { call }, { timeout: ms }) as T;
}

/** Small seeded generator (mulberry32), so a failing case can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('JSON array with a stray closing bracket', () => {
  it('skips the stray "}" as one problem on its line and loads the rows after it', () => {
    const text = '[\n{"text": "a b"}},\n{"text": "c"}\n]\n';
    const read = withinTime(2000, () => readJsonArray(text, 'f.json'));
    expect(read.records).toEqual([{ line: 2, value: { text: 'a b' } }, { line: 3, value: { text: 'c' } }]);
    expect(read.problems).toHaveLength(1);
    expect(read.problems[0]).toMatchObject({ source: 'f.json:2', line: 2, kind: 'malformed' });
    expect(read.problems[0].reason).toMatch(/stray "\}"/);
  });

  it('treats a "]" followed by a comma as stray, not as the end of the array', () => {
    const text = '[\n{"a": [1]}],\n{"a": 2},\n}\n{"a": 3}\n]';
    const read = withinTime(2000, () => readJsonArray(text, 'f.json'));
    // line 4's "}" is stray too; "{"a": 3}" follows without a comma, so it is the next element
    expect(read.records).toEqual([{ line: 2, value: { a: [1] } }, { line: 3, value: { a: 2 } }, { line: 5, value: { a: 3 } }]);
    expect(read.problems.map((p) => [p.line, p.reason.match(/stray "(.)"/)?.[1]])).toEqual([[2, ']'], [4, '}']]);
  });

  it('folds a line of stray brackets or empty elements into one problem', () => {
    const read = withinTime(2000, () => readJsonArray('[{"a": 1}}}}]],\n,,,,\n{"a": 2}]', 'f.json'));
    expect(read.records.map((r) => r.value)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(read.problems.map((p) => p.line)).toEqual([1, 2]);
  });

  it('survives a few hundred randomly damaged arrays: bounded problems, only DataErrors', () => {
    const random = seeded(20240611);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const NOISE = ['{', '}', '[', ']', ',', '"', ':', '\\', '\n', ' ', 'x', '1', '}},', '],', ',,'];
    const row = (k: number) => ({ text: `row ${k} "quoted" \\ back`, n: k, tags: ['a', { b: [k, null] }], nested: { deep: { list: [1, 2, 3] } } });
    let loaded = 0;
    let refused = 0;
    for (let c = 0; c < 400; c++) {
      const rows = Array.from({ length: 1 + Math.floor(random() * 6) }, (_, k) => row(k));
      let text = random() < 0.5 ? JSON.stringify(rows, null, 2) : '[\n' + rows.map((r) => JSON.stringify(r)).join(',\n') + '\n]\n';
      const damages = 1 + Math.floor(random() * 6);
      for (let d = 0; d < damages; d++) {
        const at = Math.floor(random() * (text.length + 1));
        const kind = random();
        if (kind < 0.4) text = text.slice(0, at) + pick(NOISE) + text.slice(at); // insert
        else if (kind < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3)); // delete
        else if (kind < 0.9) text = text.slice(0, at) + pick(NOISE) + text.slice(at + 1); // replace
        else text = text.slice(0, at) + text.slice(at, at + 8) + text.slice(at); // duplicate a run
      }
      const lineCount = text.split('\n').length;
      let read: ContainerRead;
      try {
        read = withinTime(2000, () => readJsonArray(text, 'fuzz.json'));
      } catch (e) {
        if (!(e instanceof DataError)) throw new Error(`case ${c} threw ${(e as Error).name}: ${(e as Error).message}\n${JSON.stringify(text)}`);
        refused++;
        continue;
      }
      loaded++;
      expect(read.problems.length, `case ${c}: ${JSON.stringify(text)}`).toBeLessThanOrEqual(lineCount + 1);
      for (const p of read.problems) expect(p.line).toBeGreaterThanOrEqual(1);
      for (const r of read.records) expect(r.line).toBeLessThanOrEqual(lineCount);
    }
    // the damage must leave both outcomes common, or the fuzz tests little
    expect(loaded).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
  });
});

describe('a .json file holding one pretty-printed object', () => {
  it('says the file is a single object over several lines and what a .json dataset must be', () => {
    const call = () => parseContainer('{\n "text": "one object"\n}', 'one.json');
    expect(call).toThrow(DataError);
    expect(call).toThrow('one.json: the file is a single JSON object spread over several lines');
    expect(call).toThrow(/a \.json dataset must be an array of rows .* or JSON Lines \(one object per line\)/);
  });

  it('says so too for several pretty-printed objects, and leaves one-line objects alone', () => {
    expect(() => parseContainer('{\n "text": "a"\n}\n{\n "text": "b"\n}\n', 'many.json')).toThrow(/many\.json: its JSON objects are spread over several lines \(pretty-printed\)/);
    const one = parseContainer('{"text": "one object"}\n', 'one.json');
    expect(one.records).toEqual([{ line: 1, value: { text: 'one object' } }]);
    // a JSON Lines file with some broken lines still loads the good ones
    const mixed = parseContainer('{"text": "a"}\n{"text":\n', 'mixed.jsonl');
    expect(mixed.records).toHaveLength(1);
    expect(mixed.problems.map((p) => p.line)).toEqual([2]);
  });
});
