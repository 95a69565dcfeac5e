// Whether this machine lets a test make a folder immutable (`chattr +i`):
// the one way to get a folder that even root cannot write, to test the
// "cannot be written" messages. Root on a file system with the attribute
// only; elsewhere the tests that need it are skipped.
import { execFileSync } from 'node:child_process';
import { tempDir } from './e2e-fixtures.js';

export const canMakeImmutable: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    const probe = tempDir('chattr');
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
