/**
 * A count with its noun, for messages a user reads: "1 row", "3 rows", never
 * "3 row(s)". Regular plurals add an "s"; pass the plural when it is not
 * that (countOf(2, 'entry', 'entries')). The number is written as
 * String(n) does (no thousands separators), the way Node-side messages
 * print counts; only exactly 1 takes the singular ("0 rows", "1.5 steps").
 */
export function countOf(n: number, noun: string, plural = noun + 's'): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
