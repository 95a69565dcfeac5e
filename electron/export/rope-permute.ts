// The row permutation llama.cpp applies to q_proj / k_proj when it converts a
// Hugging Face Llama (or Mistral) checkpoint.
//
// Hugging Face Llama applies RoPE in the rotate_half layout: inside each
// head, dimension j is rotated together with dimension j + head_dim/2.
// llama.cpp runs LLM_ARCH_LLAMA with "normal" RoPE, which rotates adjacent
// pairs (2j, 2j+1). Its converter (convert_hf_to_gguf.py, LlamaModel.permute)
// therefore reorders the output rows of q_proj and k_proj, per head:
//   new row  h*hd + 2j + s  =  old row  h*hd + s*(hd/2) + j     (s = 0, 1)
// i.e. reshape rows to [heads, 2, hd/2], swap the last two axes, flatten.
// For a LoRA pair the update is B @ A with B's rows being the output rows, so
// the same permutation applies to lora_B and lora_A stays as it is.
// Qwen2/Qwen3 run with NEOX RoPE in llama.cpp (the rotate_half layout): no
// permutation there.

/** Output-row order llama.cpp's converter gives q/k: result[newRow] = oldRow. */
export function ropeRowOrder(heads: number, headDim: number): Int32Array {
  if (headDim % 2 !== 0) throw new Error(`head_dim ${headDim} is odd; RoPE needs an even head_dim`);
  const half = headDim / 2;
  const order = new Int32Array(heads * headDim);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) order[h * headDim + 2 * j + s] = h * headDim + s * half + j;
    }
  }
  return order;
}

/** Rows of a row-major [rows, cols] matrix reordered: out[r] = m[order[r]]. */
export function gatherRows(m: Float32Array, cols: number, order: Int32Array): Float32Array {
  if (m.length !== order.length * cols) throw new Error(`internal: matrix of ${m.length} values is not [${order.length}, ${cols}]`);
  const out = new Float32Array(m.length);
  for (let r = 0; r < order.length; r++) out.set(m.subarray(order[r] * cols, order[r] * cols + cols), r * cols);
  return out;
}

/** Inverse of gatherRows with the same order: out[order[r]] = m[r]. */
export function scatterRows(m: Float32Array, cols: number, order: Int32Array): Float32Array {
  if (m.length !== order.length * cols) throw new Error(`internal: matrix of ${m.length} values is not [${order.length}, ${cols}]`);
  const out = new Float32Array(m.length);
  for (let r = 0; r < order.length; r++) out.set(m.subarray(r * cols, r * cols + cols), order[r] * cols);
  return out;
}
