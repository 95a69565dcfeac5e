// The work split of the fused LoRA kernels (lora_fused.cu) and the scratch
// it needs: a function of the shapes only, so the summation order is fixed,
// and plain C++ so the memory estimate (core/memory_estimate.cpp) counts the
// partial sums the same way the kernels allocate them.
#pragma once

#include <algorithm>
#include <cstddef>

namespace ps {
namespace cuda {
namespace lora_plan {

constexpr int kRows = 32;         // rows per tile (every kernel)
constexpr int kFwdKGroup = 256;   // forward 1: X columns per block (at least; see Split)
constexpr int kFwdNGroup = 128;   // forward 2: Y columns per block
constexpr int kDySuper = 128;     // backward 1: dY columns whose dB partial stays in registers
constexpr int kXGroup = 128;      // backward 3: columns per block (dA partial in registers)
// Reductions over rows end in at most this many partials per gradient
// element (row groups), and dH in at most this many (dY column groups): the
// partial traffic stays a small fraction of reading dY and X, and the grids
// (row groups x column groups) still have hundreds of blocks at training sizes.
constexpr int kMaxRowGroups = 32;
constexpr int kMaxColGroups = 32;
// 16 Mi floats (64 MiB) of dA + dB, or of dH / H, partials: at Llama-3.1-8B's
// MLP with r 64 over 8 x 2048 tokens that still gives 14 row groups x 16
// column groups = 224 blocks for the dY pass (one block per SM there, 132 SMs
// on an H200); 32 MiB gave 56 (review, session 5).
constexpr size_t kPartialBudget = size_t(16) << 20;

// Ranks above 64 run as slices of at most 64 (the kernels' tiles hold 64 ranks).
constexpr int kSliceRank = 64;
inline int slice_rank(int r, int j0) { return std::min(kSliceRank, r - j0); }

// How the rows and the columns are split between blocks.
struct Split {
  int tiles = 0, row_groups = 0, tiles_per_group = 0;    // backward: row groups of whole tiles
  int supers = 0, col_groups = 0, supers_per_group = 0;  // backward 1: dY column groups
  int x_groups = 0;                                      // backward 3: X column groups
  int k_group = 0, k_groups = 0;                         // forward 1: X columns per block, groups
  int n_groups = 0;                                      // forward 2: Y column groups
};

inline Split split_for(int M, int N, int K, int r) {
  Split p;
  p.tiles = (M + kRows - 1) / kRows;
  // Row groups: at most kMaxRowGroups, and their dA + dB partials
  // (row_groups (N + K) r floats) within kPartialBudget.
  const size_t per_group = (static_cast<size_t>(N) + K) * r;
  const int by_budget = static_cast<int>(std::max<size_t>(1, std::min<size_t>(kMaxRowGroups, kPartialBudget / per_group)));
  p.tiles_per_group = (p.tiles + by_budget - 1) / by_budget;
  p.row_groups = (p.tiles + p.tiles_per_group - 1) / p.tiles_per_group;
  // Column groups of dY (backward) and of X (forward's H): at most
  // kMaxColGroups, and their dH / H partials (groups M r floats) within kPartialBudget.
  const size_t per_col_group = static_cast<size_t>(M) * r;
  const int col_cap =
      static_cast<int>(std::max<size_t>(1, std::min<size_t>(kMaxColGroups, kPartialBudget / per_col_group)));
  p.supers = (N + kDySuper - 1) / kDySuper;
  p.supers_per_group = (p.supers + col_cap - 1) / col_cap;
  p.col_groups = (p.supers + p.supers_per_group - 1) / p.supers_per_group;
  p.x_groups = (K + kXGroup - 1) / kXGroup;
  const int k_units = (K + kFwdKGroup - 1) / kFwdKGroup;
  p.k_group = kFwdKGroup * ((k_units + col_cap - 1) / col_cap);
  p.k_groups = (K + p.k_group - 1) / p.k_group;
  p.n_groups = (N + kFwdNGroup - 1) / kFwdNGroup;
  return p;
}

// The scratch layout of one slice: dH partials [col_groups][M][rs], dB
// partials [row_groups][N][rs], dA partials [row_groups][rs][K], each
// present only when needed. Slices run in turn and reuse it.
struct ScratchLayout {
  size_t h = 0, b = 0, a = 0;
  size_t total() const { return h + b + a; }
};

inline ScratchLayout layout_for(const Split& p, int M, int N, int K, int rs, bool want_dA, bool want_dB,
                                bool want_dX) {
  ScratchLayout l;
  if (want_dA || want_dX) l.h = static_cast<size_t>(p.col_groups) * M * rs;
  if (want_dB) l.b = static_cast<size_t>(p.row_groups) * N * rs;
  if (want_dA) l.a = static_cast<size_t>(p.row_groups) * rs * K;
  return l;
}

inline size_t forward_scratch(const Split& p, int M, int rs) {
  return p.k_groups > 1 ? static_cast<size_t>(p.k_groups) * M * rs : 0;
}

}  // namespace lora_plan

// Ranks up to this run fused: the kernels' tiles hold 64 ranks, a rank
// above that runs as two slices of at most 64 (each reads X and dY once
// more); beyond 128 the GEMM path (its products are no longer skinny).
constexpr int kLoraFusedMaxRank = 128;

// The dispatch rule of CudaBackend::lora_forward/backward: 1 <= r <= 128 and
// M, N, K >= 1 (the degenerate shapes go through the GEMM path, which
// handles empty products exactly as the CPU does).
inline bool lora_fused_supported(int M, int N, int K, int r) {
  return r >= 1 && r <= kLoraFusedMaxRank && M >= 1 && N >= 1 && K >= 1;
}

// Scratch (floats, device memory) that lora_fused_forward needs for the
// K-group partials of H (0 when K is not split).
inline size_t lora_fused_forward_scratch_floats(int M, int N, int K, int r) {
  if (!lora_fused_supported(M, N, K, r)) return 0;
  size_t most = 0;
  for (int j0 = 0; j0 < r; j0 += lora_plan::kSliceRank) {
    const int rs = lora_plan::slice_rank(r, j0);
    most = std::max(most, lora_plan::forward_scratch(lora_plan::split_for(M, N, K, rs), M, rs));
  }
  return most;
}

// Scratch (floats, device memory) that lora_fused_backward needs for the
// partial sums; which gradients are wanted changes it.
inline size_t lora_fused_backward_scratch_floats(int M, int N, int K, int r, bool want_dA, bool want_dB,
                                                 bool want_dX) {
  if (!lora_fused_supported(M, N, K, r)) return 0;
  size_t most = 0;
  for (int j0 = 0; j0 < r; j0 += lora_plan::kSliceRank) {
    const int rs = lora_plan::slice_rank(r, j0);
    most = std::max(most, lora_plan::layout_for(lora_plan::split_for(M, N, K, rs), M, N, K, rs, want_dA, want_dB,
                                                want_dX)
                              .total());
  }
  return most;
}

}  // namespace cuda
}  // namespace ps
