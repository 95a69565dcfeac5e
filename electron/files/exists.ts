// Whether a path exists, for the callers that choose what to do next (refuse
// an out folder, explain a missing file) rather than fail on the first read.
import { stat } from 'node:fs/promises';

/** True when `path` names a file, folder or anything else stat() can see; false on any error (missing, no permission). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
