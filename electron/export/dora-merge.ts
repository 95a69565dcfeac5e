// Merging one DoRA-adapted linear into its base weight, as PEFT's
// LoraLayer.merge does with use_dora:
//   W' = (m / n) ⊙_row (W + s·B·A),   n_o = || W_o + s·(B·A)_o ||_2
// bias unchanged. W + s·B·A is formed in float32 as a plain LoRA merge forms
// it (the engine's GEMM, on threads: PEFT forms it in the weight's dtype);
// each row's norm is then summed in float64 and the row rescaled once, so
// the ratio m / n that DoRA trained carries no float32 summation error of
// its own.

/** The low-rank factors that update one base weight, with DoRA its magnitude. */
export interface LoraPair {
  A: Float32Array; // [r, in]
  B: Float32Array; // [out, r]
  rank: number;
  /** DoRA: m [out]; absent: plain LoRA */
  magnitude?: Float32Array;
}

/**
 * W (float32 [out, in], in place, already W + s·B·A) rescaled row by row to
 * the magnitude m: W_o ← (m_o / ||W_o||) W_o. `name` names the weight in errors.
 */
export function rescaleRowsToMagnitude(W: Float32Array, out: number, inF: number, m: Float32Array, name: string): void {
  if (W.length !== out * inF || m.length !== out) {
    throw new Error(`internal: DoRA merge of ${name}: W [${out}, ${inF}] and magnitude ${m.length} values do not fit`);
  }
  for (let o = 0; o < out; o++) {
    const base = o * inF;
    let sq = 0;
    for (let i = 0; i < inF; i++) sq += W[base + i] * W[base + i];
    const norm = Math.sqrt(sq);
    if (!(norm > 0) || !Number.isFinite(norm)) {
      // PEFT would divide by it too: a zero (or non-finite) row cannot be rescaled to a magnitude
      throw new Error(`cannot merge the DoRA adapter into ${name}: row ${o} of W + scaling·B·A has norm ${norm}, so m / norm is undefined. The adapter or the base weights are damaged`);
    }
    const f = m[o] / norm;
    for (let i = 0; i < inF; i++) W[base + i] = W[base + i] * f;
  }
}
