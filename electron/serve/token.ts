// The browser-mode access token: 32 random bytes as hex, printed once in the
// URL. Anyone who has it can drive the studio (and so train and write files
// inside --root), so it is compared in constant time: an attacker probing the
// server learns nothing from how long a wrong guess takes.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_BYTES = 32;

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('hex');
}

/**
 * Whether `given` is the token. Both sides are hashed first so the comparison
 * takes the same time whatever the length of the guess (timingSafeEqual alone
 * needs equal lengths and would reveal the length by refusing early).
 */
export function tokenMatches(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}
