// The row-major -> column-major mapping of cublaslt::Gemm (lt_gemm.h),
// checked where no real cuBLASLt can run: in the CPU simulator build
// (PS_CUDA_SIM), Gemm is handed a Library whose entry points are this file's
// host implementation of the documented cuBLASLt contract (column-major
// D = alpha op(A) op(B) + beta C, layouts given as stored rows x cols with
// ld >= rows, TRANSA/TRANSB as int32 attributes, alpha/beta host scalars,
// C not read when beta is 0). The stand-in checks every argument it gets and
// computes in float64 in the same k order as the reference below, so any
// wrong role, transpose, shape, stride or offset shows as a bit mismatch.
//
// What this cannot check: the numeric values of the real enums and the real
// library's behaviour (api.h cites its sources; test_cublaslt_gemm runs the
// real library on the GPU machine). In the nvcc build this test exits 77.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cublaslt/lt_gemm.h"
#include "check.h"
#include "error.h"
#include "op_test_util.h"

#ifdef PS_CUDA_SIM

using namespace ps::cublaslt;
using optest::Rand;
using optest::random_vec;

namespace {

// ---- the stand-in library -------------------------------------------------------
struct Desc {
  int compute = 0, scale = 0;
  int32_t transa = kOpN, transb = kOpN;
};
struct Layout {
  int type = 0;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
};
struct Pref {
  uint64_t workspace = 0;
  uint32_t align[4] = {256, 256, 256, 256};
};

struct Stats {
  int live = 0;            // descriptors and handles not yet destroyed
  int heuristic_calls = 0;
  int matmul_calls = 0;
  bool offer_algorithm = true;
  Status matmul_status = kStatusSuccess;
  std::string error;  // the first contract violation seen
};
Stats g_stats;

Status violation(const std::string& what) {
  if (g_stats.error.empty()) g_stats.error = what;
  return kStatusInvalidValue;
}

Status fake_create(Handle* h) {
  static int context;
  *h = reinterpret_cast<Handle>(&context);
  ++g_stats.live;
  return kStatusSuccess;
}
Status fake_destroy(Handle) {
  --g_stats.live;
  return kStatusSuccess;
}
size_t fake_version() { return 120604; }
Status fake_desc_create(MatmulDesc* d, ComputeType compute, DataType scale) {
  if (compute != kCompute32F || scale != kR32F) return violation("MatmulDescCreate: not COMPUTE_32F / R_32F");
  auto* p = new Desc;
  p->compute = compute;
  p->scale = scale;
  *d = reinterpret_cast<MatmulDesc>(p);
  ++g_stats.live;
  return kStatusSuccess;
}
Status fake_desc_destroy(MatmulDesc d) {
  delete reinterpret_cast<Desc*>(d);
  --g_stats.live;
  return kStatusSuccess;
}
Status fake_desc_set(MatmulDesc d, MatmulDescAttribute attr, const void* buf, size_t size) {
  auto* p = reinterpret_cast<Desc*>(d);
  if (size != sizeof(int32_t)) return violation("MatmulDescSetAttribute: size " + std::to_string(size));
  int32_t v;
  std::memcpy(&v, buf, sizeof v);
  if (v != kOpN && v != kOpT) return violation("MatmulDescSetAttribute: operation " + std::to_string(v));
  if (attr == kDescTransA) p->transa = v;
  else if (attr == kDescTransB) p->transb = v;
  else return violation("MatmulDescSetAttribute: unexpected attribute " + std::to_string(int(attr)));
  return kStatusSuccess;
}
Status fake_layout_create(MatrixLayout* l, DataType type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return violation("MatrixLayoutCreate: empty matrix");
  if (ld < static_cast<int64_t>(rows)) return violation("MatrixLayoutCreate: ld < rows (column-major)");
  *l = reinterpret_cast<MatrixLayout>(new Layout{type, rows, cols, ld});
  ++g_stats.live;
  return kStatusSuccess;
}
Status fake_layout_destroy(MatrixLayout l) {
  delete reinterpret_cast<Layout*>(l);
  --g_stats.live;
  return kStatusSuccess;
}
Status fake_pref_create(MatmulPreference* p) {
  *p = reinterpret_cast<MatmulPreference>(new Pref);
  ++g_stats.live;
  return kStatusSuccess;
}
Status fake_pref_destroy(MatmulPreference p) {
  delete reinterpret_cast<Pref*>(p);
  --g_stats.live;
  return kStatusSuccess;
}
Status fake_pref_set(MatmulPreference pp, MatmulPreferenceAttribute attr, const void* buf, size_t size) {
  auto* p = reinterpret_cast<Pref*>(pp);
  if (attr == kPrefMaxWorkspaceBytes) {
    if (size != sizeof(uint64_t)) return violation("MAX_WORKSPACE_BYTES wants a uint64_t");
    std::memcpy(&p->workspace, buf, size);
    return kStatusSuccess;
  }
  if (attr >= kPrefMinAlignmentA && attr <= kPrefMinAlignmentD) {
    if (size != sizeof(uint32_t)) return violation("MIN_ALIGNMENT_* wants a uint32_t");
    uint32_t v;
    std::memcpy(&v, buf, size);
    if (v == 0 || (v & (v - 1)) || v > 256) return violation("MIN_ALIGNMENT_* " + std::to_string(v));
    p->align[attr - kPrefMinAlignmentA] = v;
    return kStatusSuccess;
  }
  return violation("MatmulPreferenceSetAttribute: unexpected attribute " + std::to_string(int(attr)));
}

// op(X) dims of a stored layout under a transpose.
uint64_t op_rows(const Layout& l, int32_t t) { return t == kOpN ? l.rows : l.cols; }
uint64_t op_cols(const Layout& l, int32_t t) { return t == kOpN ? l.cols : l.rows; }

Status fake_heuristic(Handle, MatmulDesc dd, MatrixLayout a, MatrixLayout b, MatrixLayout c, MatrixLayout d,
                      MatmulPreference pp, int requested, MatmulHeuristicResult results[], int* returned) {
  ++g_stats.heuristic_calls;
  const Desc& D = *reinterpret_cast<Desc*>(dd);
  const Layout &A = *reinterpret_cast<Layout*>(a), &B = *reinterpret_cast<Layout*>(b),
               &C = *reinterpret_cast<Layout*>(c), &Dl = *reinterpret_cast<Layout*>(d);
  const Pref& P = *reinterpret_cast<Pref*>(pp);
  if (requested < 1) return violation("requestedAlgoCount < 1");
  const uint64_t m = op_rows(A, D.transa), k = op_cols(A, D.transa);
  if (op_rows(B, D.transb) != k) return violation("op(A) cols != op(B) rows");
  const uint64_t n = op_cols(B, D.transb);
  if (C.rows != m || C.cols != n || Dl.rows != m || Dl.cols != n || C.ld != Dl.ld || C.type != Dl.type)
    return violation("C/D layout does not match op(A) op(B)");
  if (A.type != B.type || (A.type != kR32F && A.type != kR16BF) || C.type != kR32F)
    return violation("unexpected data types");
  if (P.workspace == 0) return violation("no workspace offered");
  *returned = 0;
  if (!g_stats.offer_algorithm) return kStatusNotSupported;
  MatmulHeuristicResult r = {};
  for (int i = 0; i < 4; ++i) r.algo.data[i] = P.align[i];  // the algorithm "needs" what was promised
  r.algo.data[7] = 0x5eed;
  r.workspace_size = 1024;
  r.state = kStatusSuccess;
  r.waves_count = 1.0f;
  results[0] = r;
  *returned = 1;
  return kStatusSuccess;
}

bool aligned(const void* p, int64_t ld, size_t eb, uint64_t need) {
  return reinterpret_cast<uintptr_t>(p) % need == 0 && (static_cast<uint64_t>(ld) * eb) % need == 0;
}

double load(const Layout& l, const void* p, uint64_t r, uint64_t c) {
  const uint64_t at = r + c * static_cast<uint64_t>(l.ld);
  if (l.type == kR32F) return static_cast<const float*>(p)[at];
  const uint32_t bits = uint32_t(static_cast<const uint16_t*>(p)[at]) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Status fake_matmul(Handle, MatmulDesc dd, const void* alpha, const void* Ap, MatrixLayout a, const void* Bp,
                   MatrixLayout b, const void* beta, const void* Cp, MatrixLayout c, void* Dp, MatrixLayout d,
                   const MatmulAlgo* algo, void* workspace, size_t workspace_bytes, Stream stream) {
  ++g_stats.matmul_calls;
  if (g_stats.matmul_status != kStatusSuccess) return g_stats.matmul_status;
  const Desc& D = *reinterpret_cast<Desc*>(dd);
  const Layout &A = *reinterpret_cast<Layout*>(a), &B = *reinterpret_cast<Layout*>(b),
               &C = *reinterpret_cast<Layout*>(c);
  (void)d;
  if (!algo || algo->data[7] != 0x5eed) return violation("cublasLtMatmul without the heuristic's algorithm");
  if (!workspace || workspace_bytes < 1024) return violation("workspace smaller than the algorithm needs");
  if (stream != nullptr) return violation("not the legacy default stream");
  const size_t eb = A.type == kR32F ? 4 : 2;
  if (!aligned(Ap, A.ld, eb, algo->data[0]) || !aligned(Bp, B.ld, eb, algo->data[1]) ||
      !aligned(Cp, C.ld, 4, algo->data[2]) || !aligned(Dp, C.ld, 4, algo->data[3]))
    return violation("a pointer or stride is less aligned than MIN_ALIGNMENT promised");
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  const uint64_t m = C.rows, n = C.cols, k = op_cols(A, D.transa);
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t i = 0; i < m; ++i) {
      double s = 0;
      for (uint64_t p = 0; p < k; ++p) {
        const double x = D.transa == kOpN ? load(A, Ap, i, p) : load(A, Ap, p, i);
        const double y = D.transb == kOpN ? load(B, Bp, p, j) : load(B, Bp, j, p);
        s += x * y;
      }
      double v = double(al) * s;
      if (be != 0.0f) v += double(be) * static_cast<const float*>(Cp)[i + j * C.ld];  // beta 0: C unread
      static_cast<float*>(Dp)[i + j * C.ld] = static_cast<float>(v);
    }
  return kStatusSuccess;
}

std::shared_ptr<const Library> fake_library() {
  auto lib = std::make_shared<Library>();
  Api& a = lib->api;
  a.create = fake_create;
  a.destroy = fake_destroy;
  a.get_version = fake_version;
  a.matmul_desc_create = fake_desc_create;
  a.matmul_desc_destroy = fake_desc_destroy;
  a.matmul_desc_set_attribute = fake_desc_set;
  a.matrix_layout_create = fake_layout_create;
  a.matrix_layout_destroy = fake_layout_destroy;
  a.matmul_preference_create = fake_pref_create;
  a.matmul_preference_destroy = fake_pref_destroy;
  a.matmul_preference_set_attribute = fake_pref_set;
  a.matmul_algo_get_heuristic = fake_heuristic;
  a.matmul = fake_matmul;
  lib->path = "(stand-in)";
  lib->version = fake_version();
  lib->major = 12;
  return lib;
}

// ---- the row-major reference (float64, k in order) ------------------------------
struct Case {
  bool a_trans, b_trans;
  int M, N, K, pad, offset;
};

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

void run_case(Gemm& gemm, const Case& cs, DataType type, float beta, Rand& r) {
  const int lda = (cs.a_trans ? cs.M : cs.K) + cs.pad, ldb = (cs.b_trans ? cs.K : cs.N) + cs.pad,
            ldc = cs.N + cs.pad;
  const size_t na = cs.offset + size_t(cs.a_trans ? cs.K : cs.M) * lda;
  const size_t nb = cs.offset + size_t(cs.b_trans ? cs.N : cs.K) * ldb;
  const size_t nc = cs.offset + size_t(cs.M) * ldc;
  std::vector<float> A = random_vec(na, r), B = random_vec(nb, r), C0 = random_vec(nc, r);
  if (beta == 0.0f) C0.assign(nc, std::numeric_limits<float>::quiet_NaN());
  std::vector<uint16_t> A16(na), B16(nb);
  if (type == kR16BF) {  // the reference sees the bf16 values
    for (size_t i = 0; i < na; ++i) {
      A16[i] = to_bf16(A[i]);
      const uint32_t u = uint32_t(A16[i]) << 16;
      std::memcpy(&A[i], &u, 4);
    }
    for (size_t i = 0; i < nb; ++i) {
      B16[i] = to_bf16(B[i]);
      const uint32_t u = uint32_t(B16[i]) << 16;
      std::memcpy(&B[i], &u, 4);
    }
  }
  std::vector<float> C = C0;
  RowMajorGemm g;
  g.M = cs.M;
  g.N = cs.N;
  g.K = cs.K;
  g.a_trans = cs.a_trans;
  g.b_trans = cs.b_trans;
  g.ab_type = type;
  g.alpha = 0.7f;
  g.beta = beta;
  if (type == kR32F) {
    g.A = A.data() + cs.offset;
    g.B = B.data() + cs.offset;
  } else {
    g.A = A16.data() + cs.offset;
    g.B = B16.data() + cs.offset;
  }
  g.lda = lda;
  g.ldb = ldb;
  g.C = C.data() + cs.offset;
  g.ldc = ldc;
  const std::string name = std::string(cs.a_trans ? "t" : "n") + (cs.b_trans ? "t" : "n") + " M" +
                           std::to_string(cs.M) + " N" + std::to_string(cs.N) + " K" + std::to_string(cs.K) +
                           " pad" + std::to_string(cs.pad) + " offset" + std::to_string(cs.offset) +
                           (type == kR32F ? " fp32" : " bf16") + " beta" + std::to_string(int(beta));
  bool ran = false;
  try {
    ran = gemm.run("mapping", g);
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, name + ": " + e.what() + " / stand-in: " + g_stats.error);
    return;
  }
  CHECK(ran);
  size_t bad = 0;
  for (int i = 0; i < cs.M; ++i)
    for (int j = 0; j < cs.N; ++j) {
      double s = 0;
      for (int p = 0; p < cs.K; ++p) {
        const float a = cs.a_trans ? A[cs.offset + size_t(p) * lda + i] : A[cs.offset + size_t(i) * lda + p];
        const float b = cs.b_trans ? B[cs.offset + size_t(j) * ldb + p] : B[cs.offset + size_t(p) * ldb + j];
        s += double(a) * b;
      }
      double v = double(0.7f) * s;  // alpha as the float it is
      if (beta != 0.0f) v += double(beta) * C0[cs.offset + size_t(i) * ldc + j];
      const float want = static_cast<float>(v), got = C[cs.offset + size_t(i) * ldc + j];
      if (std::memcmp(&want, &got, 4) != 0) ++bad;
    }
  // Nothing outside the matrix (padding, the offset prefix) changed.
  for (size_t e = 0; e < nc; ++e) {
    const bool inside = e >= size_t(cs.offset) && (e - cs.offset) % ldc < size_t(cs.N);
    if (!inside && std::memcmp(&C[e], &C0[e], 4) != 0) ++bad;
  }
  if (bad) pstest::fail(__FILE__, __LINE__, name + ": " + std::to_string(bad) + " element(s) differ");
}

void test_mapping(Rand& r) {
  Gemm gemm(fake_library());
  const Case cases[] = {
      {false, true, 1, 1, 1, 0, 0},   {false, true, 3, 5, 7, 0, 0},   {false, false, 3, 5, 7, 0, 0},
      {true, false, 3, 5, 7, 0, 0},   {true, true, 4, 6, 9, 0, 0},    {false, true, 17, 9, 33, 3, 0},
      {false, false, 17, 9, 33, 3, 1}, {true, false, 17, 9, 33, 2, 5}, {false, true, 8, 16, 24, 0, 2},
      {false, false, 1, 40, 12, 0, 0}, {true, false, 40, 1, 12, 1, 3},
  };
  for (const Case& cs : cases)
    for (DataType type : {kR32F, kR16BF})
      for (float beta : {0.0f, 1.0f}) run_case(gemm, cs, type, beta, r);
  CHECK(g_stats.error.empty());
  if (!g_stats.error.empty()) std::fprintf(stderr, "stand-in saw: %s\n", g_stats.error.c_str());
  std::printf("  %d products, %d heuristic queries, %zu plans cached\n", g_stats.matmul_calls,
              g_stats.heuristic_calls, gemm.plan_count());
}

// Plans are cached per (shape, layout, types, alignment): the same call asks
// the heuristic once; another alignment asks again.
void test_cache(Rand& r) {
  Gemm gemm(fake_library());
  std::vector<float> A = random_vec(64 * 64 + 1, r), B = random_vec(64 * 64 + 1, r), C(64 * 64 + 1);
  RowMajorGemm g;
  g.M = g.N = g.K = 64;
  g.b_trans = true;
  g.A = A.data();
  g.B = B.data();
  g.C = C.data();
  g.lda = g.ldb = g.ldc = 64;
  const int before = g_stats.heuristic_calls;
  CHECK(gemm.run("cache", g));
  CHECK(gemm.run("cache", g));
  CHECK(g_stats.heuristic_calls == before + 1);
  g.A = A.data() + 1;  // 4-byte aligned instead of 256
  CHECK(gemm.run("cache", g));
  CHECK(g_stats.heuristic_calls == before + 2);
  CHECK(gemm.plan_count() == 2);
}

// No algorithm: run() says so (the backend then uses its own kernel), and
// asks only once; a failing cublasLtMatmul is a ps::Error naming the op,
// the shape, the call and the status.
void test_failures(Rand& r) {
  std::vector<float> A = random_vec(12, r), B = random_vec(12, r), C(9);
  RowMajorGemm g;
  g.M = 3;
  g.N = 3;
  g.K = 4;
  g.A = A.data();
  g.B = B.data();
  g.C = C.data();
  g.lda = 4;
  g.ldb = 3;
  g.ldc = 3;
  {
    Gemm gemm(fake_library());
    g_stats.offer_algorithm = false;
    const int before = g_stats.heuristic_calls;
    CHECK(!gemm.run("gemm_nn", g));
    CHECK(!gemm.run("gemm_nn", g));
    CHECK(g_stats.heuristic_calls == before + 1);
    g_stats.offer_algorithm = true;
  }
  Gemm gemm(fake_library());
  g_stats.matmul_status = kStatusExecutionFailed;
  std::string msg;
  try {
    gemm.run("gemm_nn", g);
  } catch (const ps::Error& e) {
    msg = e.what();
  }
  g_stats.matmul_status = kStatusSuccess;
  CHECK(msg == "cuBLASLt error in gemm_nn, M=3, N=3, K=4: cublasLtMatmul returned CUBLAS_STATUS_EXECUTION_FAILED (13)");
  if (!msg.empty()) std::printf("  error: %s\n", msg.c_str());
}

}  // namespace

int main() {
  Rand r(20261130);
  try {
    test_mapping(r);
    test_cache(r);
    test_failures(r);
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what() + " / stand-in: " +
                                         g_stats.error);
  }
  CHECK(g_stats.live == 0);  // every handle and descriptor destroyed with its Gemm
  return pstest::finish("test_cublaslt_mapping");
}

#else

int main() {
  std::printf("test_cublaslt_mapping: SKIPPED: runs in the CPU simulator build (PS_CUDA_SIM); on a GPU "
              "test_cublaslt_gemm checks the real library\n");
  return 77;
}

#endif
