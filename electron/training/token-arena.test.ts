// The arena the loader's rows live in: views into shared chunks that double
// from 64K ints to 1M, a row too long for a chunk in a buffer of its own, and
// a refusal (not a silent wrap) of anything that is not a 32-bit integer.
import { describe, expect, it } from 'vitest';
import { Int32Arena } from './token-arena.js';

describe('Int32Arena', () => {
  it('hands out zeroed, adjacent views of one chunk until it is full, then a chunk twice as large', () => {
    const arena = new Int32Arena();
    const a = arena.take(10);
    const b = arena.take(65_536 - 10);
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer.byteLength).toBe(4 * 65_536);
    expect([a.byteOffset, b.byteOffset]).toEqual([0, 40]);
    expect(a.every((v) => v === 0)).toBe(true);
    a.fill(7);
    const c = arena.take(1);
    expect(c.buffer).not.toBe(a.buffer);
    expect(c.buffer.byteLength).toBe(4 * 131_072);
    expect(Array.from(a)).toEqual(new Array(10).fill(7));
    expect(b[0]).toBe(0);
  });

  it('starts the next chunk for a row that does not fit the tail, and stops doubling at 1M ints', () => {
    const arena = new Int32Arena();
    const sizes: number[] = [];
    for (let k = 0; k < 8; k++) sizes.push(arena.take(60_000).buffer.byteLength / 4);
    // 64K ints hold one row of 60,000, 128K two, 256K four: the eighth row starts a chunk of 512K
    expect(sizes).toEqual([65_536, 131_072, 131_072, 262_144, 262_144, 262_144, 262_144, 524_288]);
    const big = new Int32Arena();
    const lengths = new Set<number>();
    for (let k = 0; k < 40; k++) lengths.add(big.take(200_000).buffer.byteLength / 4);
    expect(Math.max(...lengths)).toBe(1 << 20);
  });

  it('gives a row longer than the largest chunk a buffer of exactly its size', () => {
    const arena = new Int32Arena();
    const small = arena.take(3);
    const long = arena.take((1 << 20) + 1);
    expect(long.buffer.byteLength).toBe(4 * ((1 << 20) + 1));
    expect(long.byteOffset).toBe(0);
    // and the chunk in use goes on
    expect(arena.take(3).buffer).toBe(small.buffer);
  });

  it('copies numbers and Int32Arrays alike, and refuses what an Int32Array would wrap', () => {
    const arena = new Int32Arena();
    const values = [0, 5, -100, 2 ** 31 - 1, -(2 ** 31)];
    expect(Array.from(arena.copy(values))).toEqual(values);
    expect(Array.from(arena.copy(Int32Array.from(values)))).toEqual(values);
    for (const bad of [2 ** 31, 1.5, Number.NaN, -(2 ** 31) - 1]) {
      expect(() => arena.copy([1, bad])).toThrow(new RegExp(`internal: token value ${bad} at 1 is not a 32-bit integer`));
    }
  });
});
