// The one place every command's model value passes before the command runs:
// a model in the Hugging Face hub cache (its models--org--name folder, that
// folder's snapshots/, or the repo id "org/name") becomes the snapshot folder
// it stands for, with one note saying so. Commands then see a plain model
// folder, so what they record (train's run.json) is that folder.
import type { CommandSpec, ParsedArgs } from './args.js';
import type { CliIO } from './command.js';
import { resolveCachedModel, resolutionNote } from '../models/hf-cache.js';
import { urlValueProblem } from '../files/url-path.js';

/** The flag, and the positional, that name a model folder in any command. */
export const MODEL_FLAG = 'model';
export const MODEL_POSITIONAL = 'modelDir';

export async function resolveModelArgs(spec: CommandSpec, args: ParsedArgs, io: CliIO, env: NodeJS.ProcessEnv = process.env): Promise<ParsedArgs> {
  if (args.help) return args;
  const resolveOne = async (value: string, named: string): Promise<string | null> => {
    const url = urlValueProblem(value, named, 'model');
    if (url !== null) throw new Error(url);
    const choice = await resolveCachedModel(value, env);
    if (choice === null) return null;
    io.stderr(`note: ${resolutionNote(choice)}\n`);
    return choice.snapshot;
  };
  const flag = spec.flags.find((f) => f.name === MODEL_FLAG && f.kind === 'string');
  const flagValue = flag ? args.string(MODEL_FLAG) : undefined;
  if (flagValue !== undefined) {
    const snapshot = await resolveOne(flagValue, `--${MODEL_FLAG}`);
    if (snapshot !== null) args = args.withString(MODEL_FLAG, snapshot);
  }
  const index = spec.positionals.findIndex((p) => p.name === MODEL_POSITIONAL);
  const positional = index >= 0 ? args.positionals[index] : undefined;
  if (positional !== undefined) {
    const snapshot = await resolveOne(positional, 'MODEL');
    if (snapshot !== null) args = args.withPositional(index, snapshot);
  }
  return args;
}
