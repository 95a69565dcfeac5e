// CudaBackend's choice of GEMM: cuBLASLt when it loads (or when forced with
// PEFT_STUDIO_GEMM=cublaslt), the own tiled kernel of gemm.cu otherwise (or
// with PEFT_STUDIO_GEMM=own). Settled once per backend, by its constructor.
#include <cstdlib>
#include <memory>
#include <string>

#include "../cuda_backend.h"
#include "../cuda_common.cuh"
#include "../gemm_common.h"
#include "error.h"
#include "loader.h"
#include "lt_gemm.h"

namespace ps {

namespace {

// The CUDA runtime this binary links (cudart, statically): its major is the
// cuBLASLt major the loader prefers (loader.h, major_preference).
#ifdef CUDART_VERSION
constexpr int kRuntimeMajor = CUDART_VERSION / 1000;
#else
constexpr int kRuntimeMajor = 13;
#endif

}  // namespace

struct CudaBackend::LtState {
  enum class Mode { Own, Auto, Forced };
  Mode mode = Mode::Auto;
  std::string why_own;                               // when the own kernel is used: why
  std::shared_ptr<const cublaslt::Library> library;  // set when cuBLASLt is (to be) used
  std::unique_ptr<cublaslt::Gemm> gemm;              // created by the backend's constructor (lt_gemm)
  bool use() const { return library != nullptr; }
};

CudaBackend::LtState& CudaBackend::lt_state() const {
  if (lt_) return *lt_;
  auto s = std::make_shared<LtState>();
  const char* env = std::getenv("PEFT_STUDIO_GEMM");
  const std::string choice = env ? env : "";
  if (choice == "own") {
    s->mode = LtState::Mode::Own;
    s->why_own = "PEFT_STUDIO_GEMM=own";
  } else if (choice == "cublaslt") {
    s->mode = LtState::Mode::Forced;
  } else if (!choice.empty() && choice != "auto") {
    throw Error("PEFT_STUDIO_GEMM=" + choice +
                " is not a GEMM choice: use own (the CUDA backend's own kernel), cublaslt, or leave it unset "
                "(cuBLASLt when it loads, else the own kernel)");
  }
#ifdef PS_CUDA_SIM
  // The simulator's "device" memory is host memory: a real cuBLASLt must
  // never see it.
  if (s->mode == LtState::Mode::Forced)
    throw Error("PEFT_STUDIO_GEMM=cublaslt: the CUDA simulator build cannot run cuBLASLt");
  s->mode = LtState::Mode::Own;
  s->why_own = "the CUDA simulator build runs the own kernels";
#endif
  if (s->mode != LtState::Mode::Own) {
    const cublaslt::LoadResult& r = cublaslt::load_once(kRuntimeMajor);
    const std::string too_old = r.ok() ? cublaslt::arch_support_problem(*r.library, info_.major) : "";
    if (r.ok() && too_old.empty()) {
      s->library = r.library;
    } else if (r.ok()) {
      if (s->mode == LtState::Mode::Forced) throw Error("PEFT_STUDIO_GEMM=cublaslt, but " + too_old);
      s->mode = LtState::Mode::Own;
      s->why_own = too_old;
    } else if (s->mode == LtState::Mode::Forced) {
      throw Error("PEFT_STUDIO_GEMM=cublaslt, but " + r.message);
    } else {
      s->mode = LtState::Mode::Own;
      s->why_own = r.summary;
    }
  }
  lt_ = s;
  return *lt_;
}

std::string CudaBackend::gemm_description() const {
  try {
    const LtState& s = lt_state();
    if (s.use()) return "cuBLASLt " + s.library->version_string() + " (" + s.library->path + ")";
    return "own tiled kernel (" + s.why_own + ")";
  } catch (const Error& e) {
    return std::string("GEMM not usable: ") + e.what();  // the constructor threw the same error
  }
}

bool CudaBackend::gemm_uses_cublaslt() const { return lt_state().use(); }

cublaslt::Gemm* CudaBackend::lt_gemm() {
  LtState& s = lt_state();
  if (!s.use()) return nullptr;
  if (!s.gemm) {
    try {
      s.gemm = std::make_unique<cublaslt::Gemm>(s.library);
    } catch (const OutOfMemory&) {
      throw;
    } catch (const Error& e) {
      if (s.mode == LtState::Mode::Forced) throw;
      // A library that loads but cannot start (no usable device for it):
      // the own kernels from now on, and describe() says why.
      s.library = nullptr;
      s.mode = LtState::Mode::Own;
      s.why_own = e.what();
      return nullptr;
    }
  }
  return s.gemm.get();
}

bool CudaBackend::lt_run(const char* op, const cublaslt::RowMajorGemm& g) {
  cublaslt::Gemm* gemm = lt_gemm();
  if (!gemm) return false;
  if (gemm->run(op, g)) return true;
  if (lt_state().mode == LtState::Mode::Forced)
    throw Error(std::string(op) + ": PEFT_STUDIO_GEMM=cublaslt, but cuBLASLt has no algorithm for M=" +
                std::to_string(g.M) + ", N=" + std::to_string(g.N) + ", K=" + std::to_string(g.K) +
                " with these types, strides and alignments");
  return false;  // this shape through the own kernel
}

namespace {

cublaslt::RowMajorGemm row_major(cublaslt::DataType ab_type, bool a_trans, bool b_trans, int M, int N, int K,
                                 float alpha, const void* A, int lda, const void* B, int ldb, float beta, float* C,
                                 int ldc) {
  cublaslt::RowMajorGemm g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.a_trans = a_trans;
  g.b_trans = b_trans;
  g.ab_type = ab_type;
  g.alpha = alpha;
  g.beta = beta;
  g.A = A;
  g.lda = lda;
  g.B = B;
  g.ldb = ldb;
  g.C = C;
  g.ldc = ldc;
  return g;
}

}  // namespace

bool CudaBackend::gemm_via_cublaslt(const char* op, bool a_trans, bool b_trans, int M, int N, int K, float alpha,
                                    const float* A, int lda, const float* B, int ldb, float beta, float* C,
                                    int ldc) {
  // Empty products and alpha == 0 (C = beta C) stay with gemm.cu's kernels.
  if (M == 0 || N == 0 || K == 0 || alpha == 0.0f) return false;
  return lt_run(op, row_major(cublaslt::kR32F, a_trans, b_trans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

bool CudaBackend::try_gemm_bf16_cublaslt(const char* op, bool a_trans, bool b_trans, int M, int N, int K,
                                         float alpha, const uint16_t* A, int lda, const uint16_t* B, int ldb,
                                         float beta, float* C, int ldc) {
  if (M == 0 || N == 0 || K == 0 || alpha == 0.0f) return false;
  return lt_run(op, row_major(cublaslt::kR16BF, a_trans, b_trans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

void CudaBackend::gemm_bf16_cublaslt(bool a_trans, bool b_trans, int M, int N, int K, float alpha,
                                     const uint16_t* A, int lda, const uint16_t* B, int ldb, float beta, float* C,
                                     int ldc) {
  const char* op = "gemm_bf16_cublaslt";
  auto fail = [&](const std::string& what) {
    throw Error(std::string(op) + ": " + what + " (M=" + std::to_string(M) + ", N=" + std::to_string(N) +
                ", K=" + std::to_string(K) + ")");
  };
  if (M < 0 || N < 0 || K < 0) fail("negative dimension");
  if (beta != 0.0f && beta != 1.0f) fail("beta must be 0 or 1, got " + std::to_string(beta));
  if (M == 0 || N == 0) return;
  if (lda < (a_trans ? M : K) || ldb < (b_trans ? K : N) || ldc < N) fail("a leading dimension is too small");
  if (K == 0 || alpha == 0.0f) {
    if (beta == 0.0f) cuda::zero_matrix(op, M, N, C, ldc);  // C = beta * C
    return;
  }
  if (!lt_state().use()) fail("needs cuBLASLt, which is not in use: " + lt_state().why_own);
  if (!try_gemm_bf16_cublaslt(op, a_trans, b_trans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
    fail(lt_state().use() ? "cuBLASLt has no bf16 algorithm for these strides and alignments (16-byte aligned "
                            "pointers and row strides are the safe choice)"
                          : "cuBLASLt could not start: " + lt_state().why_own);
}

}  // namespace ps
