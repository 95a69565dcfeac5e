// A small, strict command-line parser. Strict because a mistyped flag that is
// silently ignored wastes a training run: an unknown flag, a missing value, a
// flag given twice or a number out of range is an error that names the flag.
import { countOf } from '../text/plural.js';

export type FlagKind = 'string' | 'int' | 'number' | 'boolean' | 'list';

export interface FlagSpec {
  /** name without the leading dashes, e.g. "batch-size" */
  name: string;
  kind: FlagKind;
  help: string;
  /** placeholder in the help text, e.g. "DIR" */
  valueName?: string;
  /** allowed values (string and list flags) */
  choices?: readonly string[];
  /** inclusive bounds (int and number flags) */
  min?: number;
  max?: number;
  /** exclusive bounds */
  above?: number;
  below?: number;
  /** shown in the help text */
  defaultText?: string;
  /** a number flag's value refused: what the user may have meant instead (appended to the error), or undefined */
  refusedHint?: (raw: string) => string | undefined;
}

export interface PositionalSpec {
  name: string;
  help: string;
  /** may be left out (only the last positionals; the command then takes the value from a flag) */
  optional?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  positionals: PositionalSpec[];
  flags: FlagSpec[];
  /** extra lines printed at the end of --help */
  notes?: string[];
}

export type FlagValue = string | number | boolean | string[];

/** A usage mistake: printed with a hint to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class ParsedArgs {
  constructor(
    readonly command: string,
    readonly positionals: string[],
    private readonly values: Map<string, FlagValue>,
    readonly help: boolean,
  ) {}

  has(name: string): boolean {
    return this.values.has(name);
  }

  string(name: string): string | undefined {
    return this.typed(name, 'string') as string | undefined;
  }

  requireString(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw new UsageError(`${this.command} needs --${name}`, this.command);
    return v;
  }

  number(name: string): number | undefined {
    const v = this.values.get(name);
    if (v !== undefined && typeof v !== 'number') throw new Error(`internal: --${name} is not numeric`);
    return v;
  }

  boolean(name: string): boolean {
    return this.values.get(name) === true;
  }

  list(name: string): string[] | undefined {
    return this.typed(name, 'list') as string[] | undefined;
  }

  /** A copy with one string flag's value replaced (a --model found in the Hugging Face cache becomes its folder). */
  withString(name: string, value: string): ParsedArgs {
    this.typed(name, 'string');
    return new ParsedArgs(this.command, this.positionals, new Map(this.values).set(name, value), this.help);
  }

  /** A copy with one positional replaced. */
  withPositional(index: number, value: string): ParsedArgs {
    return new ParsedArgs(this.command, this.positionals.map((p, i) => (i === index ? value : p)), this.values, this.help);
  }

  private typed(name: string, kind: 'string' | 'list'): FlagValue | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    if (kind === 'string' && typeof v !== 'string') throw new Error(`internal: --${name} is not a string flag`);
    if (kind === 'list' && !Array.isArray(v)) throw new Error(`internal: --${name} is not a list flag`);
    return v;
  }
}

function describeBounds(f: FlagSpec): string {
  const parts: string[] = [];
  if (f.min !== undefined) parts.push(`>= ${f.min}`);
  if (f.above !== undefined) parts.push(`> ${f.above}`);
  if (f.max !== undefined) parts.push(`<= ${f.max}`);
  if (f.below !== undefined) parts.push(`< ${f.below}`);
  return parts.join(' and ');
}

function parseNumeric(f: FlagSpec, raw: string): number {
  const isInt = f.kind === 'int';
  const ok = isInt ? /^[+-]?\d+$/.test(raw.trim()) : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim());
  const value = Number(raw);
  const bounds = describeBounds(f);
  const expected = `${isInt ? 'an integer' : 'a number'}${bounds ? ` ${bounds}` : ''}`;
  const hint = () => {
    const h = f.refusedHint?.(raw);
    return h === undefined ? '' : `; ${h}`;
  };
  if (!ok || !Number.isFinite(value) || (isInt && !Number.isSafeInteger(value))) {
    throw new UsageError(`--${f.name} expects ${expected}, got '${raw}'${hint()}`);
  }
  const outOfRange =
    (f.min !== undefined && value < f.min) ||
    (f.max !== undefined && value > f.max) ||
    (f.above !== undefined && value <= f.above) ||
    (f.below !== undefined && value >= f.below);
  if (outOfRange) throw new UsageError(`--${f.name} expects ${expected}, got ${raw}${hint()}`);
  return value;
}

function checkChoice(f: FlagSpec, value: string): void {
  if (f.choices && !f.choices.includes(value)) {
    throw new UsageError(`--${f.name} must be one of ${f.choices.join(', ')}; got '${value}'`);
  }
}

function convert(f: FlagSpec, raw: string): FlagValue {
  switch (f.kind) {
    case 'int':
    case 'number':
      return parseNumeric(f, raw);
    case 'list': {
      const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      if (items.length === 0) throw new UsageError(`--${f.name} expects a comma-separated list, got '${raw}'`);
      for (const item of items) checkChoice(f, item);
      return items;
    }
    case 'string':
      checkChoice(f, raw);
      return raw;
    case 'boolean':
      throw new Error('internal: boolean flags take no value');
  }
}

function unknownFlag(spec: CommandSpec, flag: string): UsageError {
  const valid = spec.flags.map((f) => `--${f.name}`).concat('--help').join(', ');
  return new UsageError(`unknown flag ${flag} for '${spec.name}'. Valid flags: ${valid}`, spec.name);
}

/** Parses argv (the words after the command name) against a command's spec. */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const values = new Map<string, FlagValue>();
  const positionals: string[] = [];
  if (argv.includes('--help') || argv.includes('-h')) {
    return new ParsedArgs(spec.name, positionals, values, true);
  }
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-' || /^-\d/.test(word)) {
      positionals.push(word);
      continue;
    }
    if (!word.startsWith('--')) throw unknownFlag(spec, word);
    const eq = word.indexOf('=');
    const name = eq >= 0 ? word.slice(2, eq) : word.slice(2);
    const f = byName.get(name);
    if (!f) throw unknownFlag(spec, `--${name}`);
    if (values.has(name)) throw new UsageError(`--${name} is given more than once`, spec.name);
    if (f.kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} is a switch and takes no value (got '${word}')`, spec.name);
      values.set(name, true);
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) {
      raw = word.slice(eq + 1);
    } else {
      raw = argv[i + 1];
      // A following "--flag" means the value was forgotten; numeric flags may
      // still take "-1" so that the range check can explain the problem.
      if (raw === undefined || raw.startsWith('--')) {
        throw new UsageError(`--${name} needs a value${f.valueName ? ` (${f.valueName})` : ''}`, spec.name);
      }
      i++;
    }
    try {
      values.set(name, convert(f, raw));
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(e.message, spec.name);
      throw e;
    }
  }
  if (positionals.length > spec.positionals.length) {
    const extra = positionals.slice(spec.positionals.length).join(' ');
    throw new UsageError(`'${spec.name}' takes ${countOf(spec.positionals.length, 'positional argument')}; unexpected: ${extra}`, spec.name);
  }
  const required = spec.positionals.filter((p) => !p.optional).length;
  if (positionals.length < required) {
    const missing = spec.positionals.slice(positionals.length, required).map((p) => `<${p.name}>`).join(' ');
    throw new UsageError(`'${spec.name}' needs ${missing}`, spec.name);
  }
  return new ParsedArgs(spec.name, positionals, values, false);
}

/** The --help text of one command. */
export function formatHelp(spec: CommandSpec, program = 'peft-studio'): string {
  const pos = spec.positionals.map((p) => (p.optional ? ` [<${p.name}>]` : ` <${p.name}>`)).join('');
  const lines = [`Usage: ${program} ${spec.name}${pos} [options]`, '', spec.summary, ''];
  for (const p of spec.positionals) lines.push(`  <${p.name}>  ${p.help}`);
  if (spec.positionals.length) lines.push('');
  lines.push('Options:');
  const labels = spec.flags.map((f) => (f.kind === 'boolean' ? `--${f.name}` : `--${f.name} ${f.valueName ?? kindPlaceholder(f)}`));
  const width = Math.max(...labels.map((l) => l.length), '--help'.length);
  spec.flags.forEach((f, i) => {
    const extras: string[] = [];
    if (f.choices) extras.push(`one of: ${f.choices.join(', ')}`);
    if (f.defaultText !== undefined) extras.push(`default: ${f.defaultText}`);
    const tail = extras.length ? ` (${extras.join('; ')})` : '';
    lines.push(`  ${labels[i].padEnd(width)}  ${f.help}${tail}`);
  });
  lines.push(`  ${'--help'.padEnd(width)}  show this help`);
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n') + '\n';
}

function kindPlaceholder(f: FlagSpec): string {
  switch (f.kind) {
    case 'int':
      return 'N';
    case 'number':
      return 'X';
    case 'list':
      return 'A,B,..';
    default:
      return 'VALUE';
  }
}
