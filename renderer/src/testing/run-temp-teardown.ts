// Vitest global setup of the renderer tests: nothing to set up; when the run
// ends, its temp folder (renderer/vitest.config.ts: the studio home, the
// Hugging Face cache and every temp folder the tests made) goes with what the
// tests wrote there, instead of staying in the system's temp folder.
import { existsSync, rmSync } from 'node:fs';

export default function setup(): () => void {
  return () => {
    const temp = process.env.PEFT_STUDIO_TEST_TEMP;
    if (!temp || !existsSync(temp)) return;
    try {
      rmSync(temp, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      console.warn(`could not remove the test run's temp folder: ${(e as Error).message}`);
    }
  };
}
