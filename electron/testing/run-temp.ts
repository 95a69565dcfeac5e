// The temp folder of one test run (vitest.config.ts and renderer/vitest.config.ts
// make it, pass it on as TMPDIR and name it in PEFT_STUDIO_TEST_TEMP): removed
// when the run ends, with what the tests wrote there, instead of staying in
// the system's temp folder run after run. Used as a vitest global setup (the
// renderer's) and by the node tests' global-setup.ts.
import { existsSync, rmSync } from 'node:fs';

/** Removes the run's temp folder; a small disk a failed test left mounted there cannot go, the rest does. */
export function removeRunTemp(): void {
  const temp = process.env.PEFT_STUDIO_TEST_TEMP;
  if (!temp || !existsSync(temp)) return;
  try {
    rmSync(temp, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    console.warn(`could not remove the test run's temp folder: ${(e as Error).message}`);
  }
}

export default function setup(): () => void {
  return removeRunTemp;
}
