// Checks of what a request carries, before any work: types, required fields,
// ranges and choices. A problem is an ApiError 'invalid' naming the field as
// the request spells it ('hyper.lr', 'maxNewTokens').
import type { ApiError } from '../api/contract.js';
import { describeLimit, limitProblem, type SettingLimit } from '../training/settings.js';
import { invalid } from './errors.js';

export type Json = Record<string, unknown>;

/** The request (or a nested object of it) as an object; anything else is refused. */
export function asObject(value: unknown, field: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(field, `${field} must be an object`);
  }
  return value as Json;
}

/** Reads the fields of one object; `prefix` is how its fields are named in errors ('hyper.'). */
export class Fields {
  constructor(readonly obj: Json, readonly prefix = '') {}

  static of(request: unknown, prefix = ''): Fields {
    return new Fields(request === undefined || request === null ? {} : asObject(request, prefix.replace(/\.$/, '') || 'request'), prefix);
  }

  name(key: string): string {
    return this.prefix + key;
  }

  error(key: string, message: string): ApiError {
    return invalid(this.name(key), message);
  }

  private present(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  /** A non-empty string; undefined when absent and not required. */
  string(key: string, required: true): string;
  string(key: string, required?: false): string | undefined;
  string(key: string, required = false): string | undefined {
    if (!this.present(key)) {
      if (required) throw this.error(key, `${this.name(key)} is required`);
      return undefined;
    }
    const v = this.obj[key];
    if (typeof v !== 'string') throw this.error(key, `${this.name(key)} must be a string, got ${typeof v}`);
    if (required && v.trim() === '') throw this.error(key, `${this.name(key)} is required (it is empty)`);
    return v;
  }

  /** A string that may be null (null and absent both give null). */
  nullableString(key: string): string | null {
    return this.string(key) ?? null;
  }

  number(key: string, limit: SettingLimit, required: true): number;
  number(key: string, limit: SettingLimit, required?: false): number | undefined;
  number(key: string, limit: SettingLimit, required = false): number | undefined {
    if (!this.present(key)) {
      if (required) throw this.error(key, `${this.name(key)} is required (${describeLimit(limit)})`);
      return undefined;
    }
    const v = this.obj[key];
    if (typeof v !== 'number') throw this.error(key, `${this.name(key)} must be ${describeLimit(limit)}, got ${JSON.stringify(v)}`);
    const problem = limitProblem(v, limit);
    if (problem) throw this.error(key, `${this.name(key)} must be ${problem}, got ${v}`);
    return v;
  }

  boolean(key: string): boolean | undefined {
    if (!this.present(key)) return undefined;
    const v = this.obj[key];
    if (typeof v !== 'boolean') throw this.error(key, `${this.name(key)} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  choice<T extends string>(key: string, choices: readonly T[], required: true): T;
  choice<T extends string>(key: string, choices: readonly T[], required?: false): T | undefined;
  choice<T extends string>(key: string, choices: readonly T[], required = false): T | undefined {
    const v = required ? this.string(key, true) : this.string(key);
    if (v === undefined) return undefined;
    if (!choices.includes(v as T)) throw this.error(key, `${this.name(key)} must be one of ${choices.join(', ')}; got '${v}'`);
    return v as T;
  }

  /** A list of strings, each one of `choices` when given. */
  stringList(key: string, choices?: readonly string[]): string[] | undefined {
    if (!this.present(key)) return undefined;
    const v = this.obj[key];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw this.error(key, `${this.name(key)} must be a list of strings`);
    const bad = choices ? (v as string[]).find((x) => !choices.includes(x)) : undefined;
    if (bad !== undefined) throw this.error(key, `${this.name(key)}: '${bad}' is not one of ${choices!.join(', ')}`);
    return v as string[];
  }

  /** A nested object (absent: empty). */
  object(key: string): Fields {
    if (!this.present(key)) return new Fields({}, `${this.name(key)}.`);
    return new Fields(asObject(this.obj[key], this.name(key)), `${this.name(key)}.`);
  }
}
