// Fused LoRA kernels of the CUDA backend (lora_fused.cu): the branch
// Y += s·(X·Aᵀ)·Bᵀ and its backward as a few launches shaped for the
// skinny rank-r products, instead of four general GEMMs. B·A is never formed.
//
// Forward (2 launches, 3 with a K split):
//   1. per (32-row tile, group of X columns): H (or the group's partial of
//      it) = X·Aᵀ, X and A staged in shared memory 32 columns at a time,
//      the next chunk in flight while the current one is multiplied;
//   (2. H = sum of the K-group partials, in group order, when K is split;)
//   3. per (32-row tile, 128 columns of Y): Y += s·H·Bᵀ, the H tile staged
//      once in shared memory, Y read and written once.
// X is read once. H, M x r, does go through memory between 1 and 3: holding
// it in shared memory for the Y pass would leave only M/32 blocks (128 at
// M = 4096, fewer than an H200's SMs) for the largest traffic of the op
// (Y, read and written), while the round trip costs 2 M r floats against
// the M K + 2 M N of X and Y.
//
// Backward (4 launches), no float atomics:
//   1. per (row group, column group of dY): dH partial = dY·B over the
//      group's columns, and dB partial = dYᵀ·H over the group's rows (dY is
//      read once for both);
//   2. dH = s · (sum of the dH partials, column groups in order);
//   3. per (row group, column group of X): dX += dH·A and the dA partial
//      dHᵀ·X over the group's rows (X is read once);
//   4. dB += s · (sum of the dB partials), dA += sum of the dA partials,
//      row groups in order.
// The groups are a function of M, N, K and r only, so the summation order
// is fixed: the same bits on every run.
//
// Ranks 65..128 run as two rank slices (64 + the rest) one after the other:
// each slice owns its columns of H, dH, B, dB and rows of A, dA; Y and dX
// accumulate the slices in order.
//
// Numerics: fp32 accumulation; against the GEMM path only the fp32
// summation order differs. With bf16_operands every operand of the four
// products (X, A, H and B forward; dY, B, H, dH, A, X backward) is rounded
// to bf16 (nearest even) as it is staged, products of two bf16 values are
// exact in fp32: the semantics of GemmPrecision::Bf16 (gemm_precision.cu),
// i.e. of tests/bf16_reference_backend.h, up to summation order. H and dH
// are written in fp32 and rounded only as operands of the next product.
//
// No CUDA types here: plain C++ (the tests) includes it.
#pragma once

#include <cstddef>

#include "lora_fused_plan.h"  // the split, the scratch sizes, the dispatch rule

namespace ps {
namespace cuda {

// Forward: H[M,r] = X[M,K]·A[r,K]ᵀ (overwritten), Y[M,N] += s·H·B[N,r]ᵀ.
// scratch holds lora_fused_forward_scratch_floats(...) floats (may be
// nullptr when that is 0). Throws ps::Error when !lora_fused_supported.
void lora_fused_forward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B,
                        float* H, float* Y, float* scratch, bool bf16_operands);

// Backward with backend.h's contract: dB += s·dYᵀ·H; when dA or dX is
// wanted dH = s·dY·B (overwritten), dA += dHᵀ·X, dX += dH·A; nullptr
// gradients are skipped (dH untouched when dA and dX are both nullptr).
// scratch holds lora_fused_backward_scratch_floats(...) floats.
void lora_fused_backward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B,
                         const float* H, const float* dY, float* dH, float* dA, float* dB, float* dX,
                         float* scratch, bool bf16_operands);

}  // namespace cuda
}  // namespace ps
