// The one place every command's dataset values pass before the command runs
// (train's --data and --eval-data, eval's --data, export's --check-data,
// `data inspect FILE`): a dataset in the Hugging Face hub cache named by its
// repo id ("org/name", not a path here) becomes its snapshot folder, with one
// note saying so, so that what a run records is that folder; a cache repo
// folder given as a path becomes its snapshot too (the data layer would read
// it as that snapshot anyway), so a run records the revision it read, and a
// resume after refs/main moved on reads the same rows.
import type { CommandSpec, ParsedArgs } from './args.js';
import type { CliIO } from './command.js';
import { cachedDatasetNote, resolveCachedDataset } from '../data/containers/hf-cache-dataset.js';
import { urlValueProblem } from '../files/url-path.js';

/** The flags, and the positional, that name a dataset. */
export const DATA_FLAGS = ['data', 'eval-data', 'check-data'];
export const DATA_POSITIONAL = 'file';

export function resolveDataArgs(spec: CommandSpec, args: ParsedArgs, io: CliIO, env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  if (args.help) return args;
  const resolveOne = (value: string, named: string): string | null => {
    const url = urlValueProblem(value, named, 'dataset');
    if (url !== null) throw new Error(url);
    let cached;
    try {
      cached = resolveCachedDataset(value, env);
    } catch (e) {
      throw new Error(`${named} ${(e as Error).message}`, { cause: e });
    }
    if (cached === null) return null;
    io.stderr(`note: ${cachedDatasetNote(cached)}\n`);
    return cached.snapshot;
  };
  for (const name of DATA_FLAGS) {
    if (!spec.flags.some((f) => f.name === name && f.kind === 'string')) continue;
    const value = args.string(name);
    const snapshot = value === undefined ? null : resolveOne(value, `--${name}`);
    if (snapshot !== null) args = args.withString(name, snapshot);
  }
  const index = spec.positionals.findIndex((p) => p.name === DATA_POSITIONAL);
  const positional = index >= 0 ? args.positionals[index] : undefined;
  if (positional !== undefined) {
    const snapshot = resolveOne(positional, 'FILE');
    if (snapshot !== null) args = args.withPositional(index, snapshot);
  }
  return args;
}
