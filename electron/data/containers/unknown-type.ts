// A file of no data type: neither its extension (without .gz / .zst) nor,
// for an extension of no type, its first character ("[" or "{") says one.
import { extname } from 'node:path';
import { DataError } from '../../training/data.js';
import type { EncodingError } from './decode-text.js';
import { DATA_FILE_TYPES, TEXT_DATA_EXTENSIONS } from './file-types.js';

/** `named`: the name that picks the container (the file's, without .gz / .zst). */
export function unknownTypeError(file: string, named: string): DataError {
  const ext = extname(named).toLowerCase();
  return new DataError(`${file}: unknown data file type "${ext || '(no extension)'}"; use ${DATA_FILE_TYPES}`);
}

/** A file that is not UTF-8: for a text type its encoding is the news, for another (.arrow, .xlsx, ...) its type. */
export function encodingOrTypeError(e: EncodingError, file: string, named: string): DataError {
  return TEXT_DATA_EXTENSIONS.includes(extname(named).toLowerCase()) ? e : unknownTypeError(file, named);
}
