// Row-major GEMMs through a loaded cuBLASLt (loader.h). No CUDA types here,
// so plain C++ (the backend header, tests) can include it.
//
// cuBLASLt is column-major; a row-major matrix [r, c] with row stride ld is
// the column-major matrix [c, r] with the same ld (its transpose). So
//   C = op(A) op(B)   (row-major)   <=>   C^T = op(B)^T op(A)^T   (column-major)
// and cuBLASLt computes C^T [N, M] = X · Y with X = B's storage seen
// column-major (transposed when B is stored [N, K], i.e. op(B) = B^T) and Y =
// A's storage seen column-major (transposed when A is stored [K, M]). No data
// moves; only the roles of A and B and the transpose flags change.
//
// Precision: CUBLAS_COMPUTE_32F (fp32 multiply-accumulate, no TF32), fp32
// alpha/beta, fp32 C/D; A and B fp32 or bf16. The algorithm is chosen once
// per (shape, layout, types, alignment) by cuBLASLt's heuristic and cached,
// so the same call gives the same bits every time in a process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "api.h"
#include "loader.h"

namespace ps {
namespace cublaslt {

// C[M, N] = alpha * op(A)[M, K] · op(B)[K, N] + beta * C, all row-major with
// row strides in elements. a_trans: A is stored [K, M] (op(A) = A^T), else
// [M, K]. b_trans: B is stored [N, K] (op(B) = B^T), else [K, N]. A and B
// have type ab_type (kR32F, or kR16BF given as raw 16-bit values); C is fp32.
struct RowMajorGemm {
  int M = 0, N = 0, K = 0;
  bool a_trans = false, b_trans = false;
  DataType ab_type = kR32F;
  float alpha = 1.0f, beta = 0.0f;
  const void* A = nullptr;
  int64_t lda = 0;
  const void* B = nullptr;
  int64_t ldb = 0;
  float* C = nullptr;
  int64_t ldc = 0;
};

class Gemm {
 public:
  // Scratch memory cuBLASLt may use (split-K and similar algorithms); owned
  // here, one per backend, reused by every call.
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;
  // Plans kept at most; past this the cache starts over (training uses a few
  // dozen shapes, so this only bounds pathological callers).
  static constexpr size_t kMaxPlans = 1024;

  // Creates the cuBLASLt handle and the workspace on the current device.
  // Throws ps::Error (ps::OutOfMemory for the workspace).
  explicit Gemm(std::shared_ptr<const Library> library);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // Queues g on the legacy default stream (in order with the backend's
  // kernels). Needs M, N, K > 0. Returns false, doing nothing, when cuBLASLt
  // has no algorithm for this problem (the caller uses another kernel);
  // throws ps::Error naming `op`, the call and the status on any error.
  bool run(const char* op, const RowMajorGemm& g);

  size_t plan_count() const { return plans_.size(); }
  const Library& library() const { return *library_; }

 private:
  struct Key {
    int M, N, K;
    bool a_trans, b_trans;
    int ab_type;
    int64_t lda, ldb, ldc;
    uint32_t align_a, align_b, align_c;
    bool operator<(const Key& o) const {
      return std::tie(M, N, K, a_trans, b_trans, ab_type, lda, ldb, ldc, align_a, align_b, align_c) <
             std::tie(o.M, o.N, o.K, o.a_trans, o.b_trans, o.ab_type, o.lda, o.ldb, o.ldc, o.align_a, o.align_b,
                      o.align_c);
    }
  };
  // Descriptors and the chosen algorithm for one Key. X is B's storage, Y is
  // A's (see the header comment).
  struct Plan {
    MatmulDesc desc = nullptr;
    MatrixLayout x = nullptr, y = nullptr, c = nullptr;
    MatmulAlgo algo = {};
    bool usable = false;  // false: cuBLASLt offered no algorithm
  };

  const Plan& plan_for(const char* op, const Key& key);
  void release(Plan& p);
  void clear_plans();

  std::shared_ptr<const Library> library_;
  const Api& api_;
  Handle handle_ = nullptr;
  void* workspace_ = nullptr;
  std::map<Key, Plan> plans_;
};

}  // namespace cublaslt
}  // namespace ps
