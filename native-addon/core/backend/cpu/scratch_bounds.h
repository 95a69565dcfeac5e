// What the CPU backend's Workspaces (workspace.h) hold at most while a run
// trains and evaluates: the memory a run needs beyond the engine's tensors
// (estimate_memory), on the CPU. Every term is computed by the functions the
// backend sizes those Workspaces with (attention_buffers.h, gemm_kernels.h,
// weight_gemm_driver.h), over every product the model runs (LoRA on every
// linear: the targets are a subset), with the kernel set a CpuBackend takes on
// this CPU; tests/test_cpu_scratch.cpp holds it against the tally the
// Workspaces keep.
// Not counted (generation only, or under a few KiB): the decode GEMVs' rows,
// the single-query attention's scratch, std::vectors of an op's bookkeeping.
#pragma once

#include <cstdint>

#include "model/dims.h"

namespace ps {

struct CpuScratchPlan {
  int threads = 1;       // the engine's CPU threads (its pool, the caller included)
  int batch = 1;         // rows of a batch
  int positions = 1;     // query positions of a row: the sequence, plus prompt tuning's virtual tokens
  int prefix = 0;        // prefix tuning's keys before them
  int prefix_hidden = 0; // prefix_projection's MLP width (0: none)
  int lora_rank = 0;     // 0: no LoRA
  bool dora = false;     // DoRA on the LoRA adapters
  bool full = false;     // full fine-tuning: every weight's gradient is a product too
  bool stored_linears = false;  // the block linears are read as stored (4-bit or 16-bit) by the weight GEMMs
  bool stored_head = false;     // so is the lm_head (16-bit)
};

struct CpuScratchEstimate {
  uint64_t attention_bytes = 0;           // packed K and V (three copies in backward) and the units' scratch
  uint64_t attention_partials_bytes = 0;  // backward's per-thread dK/dV partials
  uint64_t gemm_bytes = 0;                // the fp32 GEMM's packing slots and shared packed op(A)
  uint64_t weight_gemm_bytes = 0;         // the 4-bit / 16-bit GEMMs' packed op(A) and per-thread op(B)
  uint64_t total() const { return attention_bytes + attention_partials_bytes + gemm_bytes + weight_gemm_bytes; }
};

CpuScratchEstimate estimate_cpu_scratch(const ModelDims& d, const CpuScratchPlan& p);

}  // namespace ps
