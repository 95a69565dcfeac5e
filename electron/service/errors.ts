// How a failure reaches the UI: every error a handler throws becomes an
// ApiErrorBody, never an exception across the transport. ApiError keeps its
// body; a SettingsError (a run setting) is 'invalid' and names its field as
// the run form does ('hyper.lr'); anything else is 'failed' with its message
// (the project's errors say what is wrong and what to do: model folder, data,
// export, run folder errors).
import { ApiError, type ApiErrorBody } from '../api/contract.js';
import { SettingsError, type SettingField } from '../training/settings.js';

/** The fields of RunSettings itself; every other setting lives in RunSettings.hyper. */
const TOP_LEVEL_FIELDS: readonly string[] = ['model', 'data', 'evalData', 'out', 'method', 'dataFormat', 'completionOnly', 'pack', 'ignoreMemoryCheck', 'ignoreDiskCheck'];

/** A TrainSettings field as the run form names it: 'model', 'method', 'hyper.lr'. */
export function runSettingsField(field: SettingField | string): string {
  return TOP_LEVEL_FIELDS.includes(field) ? field : `hyper.${field}`;
}

export function invalid(field: string, message: string): ApiError {
  return new ApiError({ code: 'invalid', field, message });
}

export function failed(message: string): ApiError {
  return new ApiError({ code: 'failed', message });
}

export function errorBody(error: unknown): ApiErrorBody {
  if (error instanceof ApiError) return { ...error.body };
  if (error instanceof SettingsError) return { code: 'invalid', field: runSettingsField(error.field), message: error.message };
  // a TypeError or ReferenceError is a bug here, not a problem with the user's files: say so
  if (error instanceof TypeError || error instanceof ReferenceError) return { code: 'failed', message: `internal error (${error.name}: ${error.message}); please report it` };
  if (error instanceof Error) return { code: 'failed', message: error.message || error.name };
  return { code: 'failed', message: String(error) };
}
