// Row-major GEMMs through cuBLASLt: descriptors and heuristic choice per
// problem (cached), then cublasLtMatmul on the legacy default stream. See
// lt_gemm.h for the row-major / column-major mapping.
#include "lt_gemm.h"

#include <string>

#include "../cuda_common.cuh"
#include "error.h"

namespace ps {
namespace cublaslt {

namespace {

// The alignment cuBLASLt may assume for a matrix: the largest power of two
// (at most 256, the library's default requirement) dividing both its address
// and its row stride in bytes. Stating it keeps the heuristic from picking an
// algorithm that needs more than a sub-matrix view (an offset pointer) has.
uint32_t alignment_of(const void* p, int64_t ld, size_t element_bytes) {
  const uint64_t v = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) |
                     static_cast<uint64_t>(ld) * element_bytes | 256u;
  return static_cast<uint32_t>(v & (~v + 1));  // lowest set bit
}

size_t element_bytes(int type) { return type == kR32F ? 4 : 2; }

// "CUBLAS_STATUS_NOT_SUPPORTED (15): <the library's own sentence, when it has one>"
std::string status_text(const Api& api, Status st) {
  std::string s = describe_status(st);
  const char* text = api.get_status_string ? api.get_status_string(st) : nullptr;
  if (text && *text) s += std::string(": ") + text;
  return s;
}

std::string shape_of(const char* op, int M, int N, int K) {
  return std::string(op) + ", M=" + std::to_string(M) + ", N=" + std::to_string(N) + ", K=" + std::to_string(K);
}

}  // namespace

Gemm::Gemm(std::shared_ptr<const Library> library) : library_(std::move(library)), api_(library_->api) {
  const Status st = api_.create(&handle_);
  if (st != kStatusSuccess)
    throw Error("cuBLASLt error: cublasLtCreate failed with " + status_text(api_, st) + " (library " +
                library_->path + ")");
  const cudaError_t err = cudaMalloc(&workspace_, kWorkspaceBytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky
    api_.destroy(handle_);
    handle_ = nullptr;
    if (err == cudaErrorMemoryAllocation) throw OutOfMemory("the cuBLASLt workspace", kWorkspaceBytes);
    cuda::check(err, "cudaMalloc (cuBLASLt workspace)");
  }
}

Gemm::~Gemm() {
  clear_plans();
  if (handle_) api_.destroy(handle_);
  if (workspace_) cudaFree(workspace_);  // waits for queued work that may still use it
}

void Gemm::release(Plan& p) {
  if (p.x) api_.matrix_layout_destroy(p.x);
  if (p.y) api_.matrix_layout_destroy(p.y);
  if (p.c) api_.matrix_layout_destroy(p.c);
  if (p.desc) api_.matmul_desc_destroy(p.desc);
  p = Plan{};
}

void Gemm::clear_plans() {
  for (auto& kv : plans_) release(kv.second);
  plans_.clear();
}

const Gemm::Plan& Gemm::plan_for(const char* op, const Key& k) {
  auto found = plans_.find(k);
  if (found != plans_.end()) return found->second;
  if (plans_.size() >= kMaxPlans) clear_plans();

  Plan p;
  MatmulPreference pref = nullptr;
  auto check = [&](Status st, const char* call) {
    if (st == kStatusSuccess) return;
    if (pref) api_.matmul_preference_destroy(pref);
    release(p);
    throw Error("cuBLASLt error in " + shape_of(op, k.M, k.N, k.K) + ": " + call + " returned " +
                status_text(api_, st));
  };
  const DataType ab = static_cast<DataType>(k.ab_type);
  check(api_.matmul_desc_create(&p.desc, kCompute32F, kR32F), "cublasLtMatmulDescCreate");
  const int32_t trans_x = k.b_trans ? kOpT : kOpN;  // X = B's storage, column-major
  const int32_t trans_y = k.a_trans ? kOpT : kOpN;  // Y = A's storage, column-major
  check(api_.matmul_desc_set_attribute(p.desc, kDescTransA, &trans_x, sizeof trans_x),
        "cublasLtMatmulDescSetAttribute(TRANSA)");
  check(api_.matmul_desc_set_attribute(p.desc, kDescTransB, &trans_y, sizeof trans_y),
        "cublasLtMatmulDescSetAttribute(TRANSB)");
  // Stored shapes (rows, cols) of the column-major views: op(X) is [N, K],
  // op(Y) is [K, M], C^T is [N, M].
  check(api_.matrix_layout_create(&p.x, ab, k.b_trans ? k.K : k.N, k.b_trans ? k.N : k.K, k.ldb),
        "cublasLtMatrixLayoutCreate(B)");
  check(api_.matrix_layout_create(&p.y, ab, k.a_trans ? k.M : k.K, k.a_trans ? k.K : k.M, k.lda),
        "cublasLtMatrixLayoutCreate(A)");
  check(api_.matrix_layout_create(&p.c, kR32F, k.N, k.M, k.ldc), "cublasLtMatrixLayoutCreate(C)");

  check(api_.matmul_preference_create(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspace = kWorkspaceBytes;
  check(api_.matmul_preference_set_attribute(pref, kPrefMaxWorkspaceBytes, &workspace, sizeof workspace),
        "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  // cuBLASLt's "A" is our X (B's storage), its "B" is our Y (A's storage).
  const uint32_t align[4] = {k.align_b, k.align_a, k.align_c, k.align_c};
  const MatmulPreferenceAttribute align_attr[4] = {kPrefMinAlignmentA, kPrefMinAlignmentB, kPrefMinAlignmentC,
                                                   kPrefMinAlignmentD};
  for (int i = 0; i < 4; ++i)
    check(api_.matmul_preference_set_attribute(pref, align_attr[i], &align[i], sizeof align[i]),
          "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");

  MatmulHeuristicResult result = {};
  int returned = 0;
  const Status st = api_.matmul_algo_get_heuristic(handle_, p.desc, p.x, p.y, p.c, p.c, pref, 1, &result, &returned);
  api_.matmul_preference_destroy(pref);
  pref = nullptr;
  if (st == kStatusSuccess && returned > 0 && result.state == kStatusSuccess &&
      result.workspace_size <= kWorkspaceBytes) {
    p.algo = result.algo;
    p.usable = true;
  } else if (st != kStatusSuccess && st != kStatusNotSupported && st != kStatusArchMismatch) {
    check(st, "cublasLtMatmulAlgoGetHeuristic");
  }
  // Not usable (no algorithm, or none for this GPU): remembered too, so the
  // heuristic is asked once per problem; the caller uses another kernel.
  return plans_.emplace(k, p).first->second;
}

bool Gemm::run(const char* op, const RowMajorGemm& g) {
  const size_t eb = element_bytes(g.ab_type);
  Key k;
  k.M = g.M;
  k.N = g.N;
  k.K = g.K;
  k.a_trans = g.a_trans;
  k.b_trans = g.b_trans;
  k.ab_type = g.ab_type;
  k.lda = g.lda;
  k.ldb = g.ldb;
  k.ldc = g.ldc;
  k.align_a = alignment_of(g.A, g.lda, eb);
  k.align_b = alignment_of(g.B, g.ldb, eb);
  k.align_c = alignment_of(g.C, g.ldc, sizeof(float));
  const Plan& p = plan_for(op, k);
  if (!p.usable) return false;
  const float alpha = g.alpha, beta = g.beta;
  const Status st = api_.matmul(handle_, p.desc, &alpha, g.B, p.x, g.A, p.y, &beta, g.C, p.c, g.C, p.c, &p.algo,
                                workspace_, kWorkspaceBytes, nullptr);
  if (st != kStatusSuccess)
    throw Error("cuBLASLt error in " + shape_of(op, g.M, g.N, g.K) + ": cublasLtMatmul returned " +
                status_text(api_, st));
  return true;
}

}  // namespace cublaslt
}  // namespace ps
