// Independent float64 / bit-level references the export tests compare against
// (deliberately not sharing code with the exporter).

/** IEEE half -> number, written out from the bit layout (independent of convert.ts). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * llama.cpp's LlamaModel.permute in float64, spelled as the converter does it:
 * view rows as [n_head, 2, rows / n_head / 2, cols], swap axes 1 and 2, flatten.
 */
export function referencePermute(w: ArrayLike<number>, rows: number, cols: number, nHead: number): Float64Array {
  const half = rows / nHead / 2;
  // source strides of the [n_head, 2, half, cols] view
  const src = (h: number, s: number, j: number, c: number) => ((h * 2 + s) * half + j) * cols + c;
  const out = new Float64Array(rows * cols);
  let k = 0;
  // destination is the [n_head, half, 2, cols] array, filled in row-major order
  for (let h = 0; h < nHead; h++) for (let j = 0; j < half; j++) for (let s = 0; s < 2; s++) for (let c = 0; c < cols; c++) out[k++] = w[src(h, s, j, c)];
  return out;
}
