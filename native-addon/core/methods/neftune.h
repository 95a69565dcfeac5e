// NEFTune (Jain et al. 2023, "NEFTune: Noisy Embeddings Improve Instruction
// Finetuning") as Hugging Face transformers applies it
// (neftune_noise_alpha; trainer_utils.neftune_post_forward_hook): while
// training, the input embeddings [batch, L, D] get noise uniform on
// (-m, m), m = alpha / sqrt(L * D), L the batch's sequence length (padding
// included, a prompt-tuning soft prompt not: PEFT adds it after the
// embedding layer the hook sits on). Evaluation and generation add nothing.
// The noise is fixed by the step's key, so a resumed run and a recomputed
// pass see the same noise.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "error.h"
#include "rng.h"

namespace ps {

inline void neftune_check_alpha(float alpha) {
  if (!(std::isfinite(alpha) && alpha >= 0.0f))
    throw Error("NEFTune alpha must be a finite number >= 0 (0: off), got " + std::to_string(alpha));
}

// m = alpha / sqrt(L * D).
inline float neftune_magnitude(float alpha, int seq_len, int hidden) {
  if (alpha == 0.0f || seq_len <= 0) return 0.0f;
  return static_cast<float>(alpha / std::sqrt(static_cast<double>(seq_len) * hidden));
}

// The noise's key, from the step's (the key its dropout masks derive from).
inline uint64_t neftune_key(uint64_t step_key) { return mix_key({step_key, 0x4E4546544E4F4953ull}); }

}  // namespace ps
