// The CPU attention's buffers, one set per backend (a backend runs one op at
// a time), reused across calls (workspace.h): packed K/V and the units'
// scratch ran to megabytes that page-faulted on every call when allocated
// per call. The backward's per-thread dK/dV partials are kept only while
// they are small: at Llama-3.1-8B shapes (8 kv heads of 128, 2048 keys, 16
// threads) they are 256 MiB, which a run must not hold between steps (nor the
// memory estimate count twice); they are given back after each call above
// kAttnKeptPartialsBytes.
#pragma once

#include <cstddef>

#include "attention_kernels.h"
#include "workspace.h"

namespace ps {

constexpr size_t kAttnKeptPartialsBytes = size_t{64} << 20;

// Floats of one packed K or V (pack_kv), and of one thread's dK or dV
// partial: B rows x Hkv heads x S keys in whole blocks of kAttnBk, D wide.
inline size_t attn_packed_floats(int B, int Hkv, int S, int D) {
  const size_t blocks = (static_cast<size_t>(S) + kAttnBk - 1) / kAttnBk;
  return static_cast<size_t>(B) * Hkv * blocks * kAttnBk * D;
}

struct AttnBuffers {
  Workspace kt{"the attention K blocks"};
  Workspace v{"the attention V blocks"};
  Workspace kr{"the attention K rows"};
  Workspace scratch{"the attention scratch"};
  Workspace partials{"the attention dK/dV partials"};
};

}  // namespace ps
