// A strict JSON reader for safetensors headers.
//
// JSON.parse loses two distinctions the reference reader (serde_json) makes:
// `2.0` is a float and is refused where an integer is expected, and integers
// beyond 2^53 are silently rounded. This reader keeps them: lexical integers
// come back as `number` (or `bigint` when not exactly representable), lexical
// floats as `JsonFloat`. Objects come back as Map (tensor names are arbitrary
// strings, "__proto__" included). Duplicate keys: the last one wins, as when
// serde fills a HashMap. Nesting is capped at 128 levels like serde_json.

export class JsonFloat {
  constructor(readonly value: number, readonly text: string) {}
}

export type JsonValue = null | boolean | string | number | bigint | JsonFloat | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at character ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

const MAX_DEPTH = 128;

export function parseStrictJson(text: string): JsonValue {
  let pos = 0;

  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, pos);
  };

  const skipWhitespace = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
      else break;
    }
  };

  const expectLiteral = (literal: string, value: JsonValue): JsonValue => {
    if (text.startsWith(literal, pos)) {
      pos += literal.length;
      return value;
    }
    return fail('invalid literal');
  };

  const readHex4 = (): number => {
    const hex = text.slice(pos, pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape');
    pos += 4;
    return parseInt(hex, 16);
  };

  const readString = (): string => {
    pos++; // opening quote
    let out = '';
    let chunkStart = pos;
    for (;;) {
      if (pos >= text.length) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(chunkStart, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(chunkStart, pos);
      pos++;
      const e = text[pos++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const unit = readHex4();
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (text[pos] !== '\\' || text[pos + 1] !== 'u') fail('lone leading surrogate in \\u escape');
            pos += 2;
            const low = readHex4();
            if (low < 0xdc00 || low > 0xdfff) fail('invalid trailing surrogate in \\u escape');
            out += String.fromCharCode(unit, low);
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            fail('lone trailing surrogate in \\u escape');
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          pos--;
          fail('invalid escape');
      }
      chunkStart = pos;
    }
  };

  const readNumber = (): number | bigint | JsonFloat => {
    const match = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(pos, pos + 400));
    if (!match) return fail('invalid number');
    const literal = match[0];
    pos += literal.length;
    if (match[1] !== undefined || match[2] !== undefined) return new JsonFloat(Number(literal), literal);
    const value = Number(literal);
    return Number.isSafeInteger(value) ? value : BigInt(literal);
  };

  const readValue = (depth: number): JsonValue => {
    skipWhitespace();
    if (pos >= text.length) fail('unexpected end of input');
    const c = text[pos];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) fail('nesting deeper than 128 levels');
      return c === '{' ? readObject(depth + 1) : readArray(depth + 1);
    }
    if (c === '"') return readString();
    if (c === 't') return expectLiteral('true', true);
    if (c === 'f') return expectLiteral('false', false);
    if (c === 'n') return expectLiteral('null', null);
    if (c === '-' || (c >= '0' && c <= '9')) return readNumber();
    return fail(`unexpected character ${JSON.stringify(c)}`);
  };

  const readArray = (depth: number): JsonValue[] => {
    pos++;
    const items: JsonValue[] = [];
    skipWhitespace();
    if (text[pos] === ']') {
      pos++;
      return items;
    }
    for (;;) {
      items.push(readValue(depth));
      skipWhitespace();
      const c = text[pos++];
      if (c === ']') return items;
      if (c !== ',') {
        pos--;
        fail('expected "," or "]"');
      }
    }
  };

  const readObject = (depth: number): JsonObject => {
    pos++;
    const map: JsonObject = new Map();
    skipWhitespace();
    if (text[pos] === '}') {
      pos++;
      return map;
    }
    for (;;) {
      skipWhitespace();
      if (text[pos] !== '"') fail('expected a string key');
      const key = readString();
      skipWhitespace();
      if (text[pos] !== ':') fail('expected ":"');
      pos++;
      map.set(key, readValue(depth));
      skipWhitespace();
      const c = text[pos++];
      if (c === '}') return map;
      if (c !== ',') {
        pos--;
        fail('expected "," or "}"');
      }
    }
  };

  const value = readValue(0);
  skipWhitespace();
  if (pos < text.length) fail('trailing characters after the JSON value');
  return value;
}

/** A short human description of a parsed value's type, for error messages. */
export function describeJsonValue(value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return `boolean ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `integer ${value}`;
  if (value instanceof JsonFloat) return `floating-point number ${value.text}`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  return 'object';
}
