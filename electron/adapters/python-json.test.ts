import { describe, expect, it } from 'vitest';
import { PyFloat, pyFloatRepr, pythonJsonDumps } from './python-json.js';

describe('pyFloatRepr matches Python repr(float)', () => {
  // Expected strings are what CPython prints for repr(x).
  const cases: [number, string][] = [
    [0, '0.0'],
    [-0, '-0.0'],
    [1, '1.0'],
    [0.05, '0.05'],
    [0.1, '0.1'],
    [1 / 3, '0.3333333333333333'],
    [123.456, '123.456'],
    [100, '100.0'],
    [1e-4, '0.0001'],
    [1e-5, '1e-05'],
    [1.5e-7, '1.5e-07'],
    [1e15, '1000000000000000.0'],
    [1e16, '1e+16'],
    [1.25e20, '1.25e+20'],
    [1e300, '1e+300'],
    [-2.5, '-2.5'],
    [5e-324, '5e-324'],
    [NaN, 'NaN'],
    [Infinity, 'Infinity'],
  ];
  for (const [x, text] of cases) {
    it(`${text}`, () => expect(pyFloatRepr(x)).toBe(text));
  }
});

describe('pythonJsonDumps', () => {
  it('writes json.dumps(indent=2, sort_keys=True) text', () => {
    const value = { b: [1, new PyFloat(0.5), null, true], a: {}, c: [], 'é': 'ü\n"x"', z: { y: false, x: 'A' } };
    // json.dumps({"b": [1, 0.5, None, True], "a": {}, "c": [], "é": 'ü\n"x"', "z": {"y": False, "x": "A"}}, indent=2, sort_keys=True)
    const python = '{\n  "a": {},\n  "b": [\n    1,\n    0.5,\n    null,\n    true\n  ],\n  "c": [],\n  "z": {\n    "x": "A",\n    "y": false\n  },\n  "\\u00e9": "\\u00fc\\n\\"x\\""\n}';
    expect(pythonJsonDumps(value)).toBe(python);
  });

  it('escapes astral characters as surrogate pairs and DEL as \\u007f', () => {
    expect(pythonJsonDumps('🙂\u007f\u0001')).toBe('"\\ud83d\\ude42\\u007f\\u0001"');
  });

  it('refuses a non-integer number not marked as float', () => {
    expect(() => pythonJsonDumps({ x: 0.5 })).toThrow(/wrap floats in PyFloat/);
  });
});
