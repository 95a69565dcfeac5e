// JSON text exactly as Python's `json.dumps(value, indent=2, sort_keys=True)`
// writes it, which is how PEFT writes adapter_config.json. Differences from
// JSON.stringify(value, null, 2) that matter here: keys sorted, non-ASCII
// escaped as \uXXXX (ensure_ascii), and floats keep their float form
// (`0.0`, `1e-07`) — mark those with PyFloat since JavaScript has one number type.

/** A number Python holds as a float (so 0 prints as `0.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJson = null | boolean | number | string | PyFloat | PyJson[] | { [key: string]: PyJson };

/** Python's repr() of a float. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // Shortest round-trip digits and decimal exponent, as both languages pick them.
  const [mantissa, expText] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    return `${sign}${digits[0]}${frac}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const fracPart = digits.slice(exp + 1);
  return `${sign}${intPart}.${fracPart === '' ? '0' : fracPart}`;
}

/** A string literal with ensure_ascii escaping. */
export function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return out + '"';
}

/** json.dumps(value, indent=2, sort_keys=True). Integers must be safe integers. */
export function pythonJsonDumps(value: PyJson, indent = 2): string {
  const write = (v: PyJson, depth: number): string => {
    if (v === null) return 'null';
    if (v === true) return 'true';
    if (v === false) return 'false';
    if (v instanceof PyFloat) return pyFloatRepr(v.value);
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`pythonJsonDumps: ${v} is not an integer; wrap floats in PyFloat`);
      return String(v);
    }
    if (typeof v === 'string') return pyString(v);
    const pad = ' '.repeat(indent * (depth + 1));
    const close = ' '.repeat(indent * depth);
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[\n${v.map((item) => pad + write(item, depth + 1)).join(',\n')}\n${close}]`;
    }
    const keys = Object.keys(v).sort(comparePython);
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${pad}${pyString(k)}: ${write(v[k], depth + 1)}`).join(',\n')}\n${close}}`;
  };
  return write(value, 0);
}

/** Python sorts str by code point; JavaScript's default sort uses UTF-16 units. */
function comparePython(a: string, b: string): number {
  const ca = Array.from(a, (ch) => ch.codePointAt(0)!);
  const cb = Array.from(b, (ch) => ch.codePointAt(0)!);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    if (ca[i] !== cb[i]) return ca[i] - cb[i];
  }
  return ca.length - cb.length;
}
