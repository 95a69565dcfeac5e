// CPU GEMM: argument checks, the kernel choice, the blocked driver and its
// threading, and the portable (baseline-ISA) kernels.
//
// Threading and determinism: the output is cut into blocks (multiples of the
// micro-tile) and each block is computed start to finish by one task: it packs
// its own slices of op(A) and op(B) and walks K in fixed k-blocks whose size
// depends on K and the kernel set alone. So every C element is produced by the
// same sequence of floating-point operations whatever the thread count or the
// scheduling: results are bit-identical for any number of threads (for a given
// kernel set; portable, AVX2 and AVX-512 results differ in the last bits).
//
// Kernel choice (kernels_for): AVX-512 when the CPU has it, else AVX2/FMA,
// else (or with force_portable) the portable kernels below.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "cpu_backend.h"
#include "error.h"
#include "gemm_kernels.h"
#include "workspace.h"

namespace ps {
namespace gemm {

// ---- portable kernels -----------------------------------------------------
// Plain loops over fixed-size arrays; the compiler vectorises the inner
// (column) loops at the baseline ISA (SSE2 on x86-64, NEON on arm64).
namespace {

constexpr int kPortableMr = 4;
constexpr int kPortableNr = 8;  // 4x8: eight SSE accumulators, no spills at the baseline ISA

void portable_pack_a(const float* a, ptrdiff_t rs, ptrdiff_t cs, int rows, int kc, float* dst) {
  const int mr = kPortableMr;
  for (int i0 = 0; i0 < rows; i0 += mr, dst += (size_t)mr * kc) {
    const int h = std::min(mr, rows - i0);
    for (int i = 0; i < mr; ++i) {
      if (i >= h) {
        for (int p = 0; p < kc; ++p) dst[(size_t)p * mr + i] = 0.0f;
        continue;
      }
      const float* src = a + (i0 + i) * rs;
      for (int p = 0; p < kc; ++p) dst[(size_t)p * mr + i] = src[p * cs];
    }
  }
}

void portable_pack_b(const float* b, ptrdiff_t rs, ptrdiff_t cs, int kc, int cols, float* dst) {
  const int nr = kPortableNr;
  for (int j0 = 0; j0 < cols; j0 += nr, dst += (size_t)nr * kc) {
    const int w = std::min(nr, cols - j0);
    for (int p = 0; p < kc; ++p) {
      const float* src = b + p * rs + j0 * cs;
      float* d = dst + (size_t)p * nr;
      int j = 0;
      for (; j < w; ++j) d[j] = src[j * cs];
      for (; j < nr; ++j) d[j] = 0.0f;
    }
  }
}

void portable_micro(int kc, const float* a, const float* b, float alpha, bool accumulate,
                    float* c, ptrdiff_t ldc, int rows, int cols) {
  constexpr int MR = kPortableMr, NR = kPortableNr;
  float acc[MR][NR] = {};
  for (int p = 0; p < kc; ++p, a += MR, b += NR) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      for (int j = 0; j < cols; ++j) ci[j] += alpha * acc[i][j];
    } else {
      for (int j = 0; j < cols; ++j) ci[j] = alpha * acc[i][j];
    }
  }
}

void portable_dot_rows(int n, int k, float alpha, const float* x, const float* w, ptrdiff_t ldw,
                       bool accumulate, float* y, ptrdiff_t incy) {
  constexpr int L = 8;  // independent partial sums, combined in a fixed tree
  for (int j = 0; j < n; ++j) {
    const float* wj = w + j * ldw;
    float s[L] = {};
    int p = 0;
    for (; p + L <= k; p += L)
      for (int q = 0; q < L; ++q) s[q] += x[p + q] * wj[p + q];
    float tail = 0.0f;
    for (; p < k; ++p) tail += x[p] * wj[p];
    const float dot = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7])) + tail;
    float& out = y[j * incy];
    out = accumulate ? out + alpha * dot : alpha * dot;
  }
}

void portable_axpy_rows(int n, int k, float alpha, const float* x, ptrdiff_t incx, const float* w,
                        ptrdiff_t ldw, bool accumulate, float* y) {
  constexpr int W = 64;  // columns kept in a local accumulator (L1-resident)
  for (int j0 = 0; j0 < n; j0 += W) {
    const int cols = std::min(W, n - j0);
    float acc[W] = {};
    for (int p = 0; p < k; ++p) {
      const float xp = x[p * incx];
      const float* wp = w + p * ldw + j0;
      for (int j = 0; j < cols; ++j) acc[j] += xp * wp[j];
    }
    float* yj = y + j0;
    if (accumulate) {
      for (int j = 0; j < cols; ++j) yj[j] += alpha * acc[j];
    } else {
      for (int j = 0; j < cols; ++j) yj[j] = alpha * acc[j];
    }
  }
}

}  // namespace

const KernelSet& portable_kernels() {
  static const KernelSet set = {"portable", kPortableMr, kPortableNr, 256, portable_pack_a,
                                portable_pack_b, portable_micro, nullptr,
                                portable_dot_rows, portable_axpy_rows};
  return set;
}

// ---- blocked driver -------------------------------------------------------
namespace {

// Cache blocking, sized for a core with a 32-48 KiB L1d and a 2 MiB L2:
// the kc x nr micro-panel of op(B) (kc = KernelSet::kc_max at most) stays in
// L1 while the mb x kc block of op(A) (<= 792 KiB) and the kc x nb block of
// op(B) (<= 768 KiB) stay in L2. kMbMax covers a 512-token batch in one row
// block, so the transposed weight of the forward product is packed once (on
// a quiet 2-thread run this took the 512-token nt shapes from 0.73-0.81x to
// 0.94x OpenBLAS).
constexpr int kMbMax = 528;
constexpr int kNbMax = 512;
// The row order of the micro-tiles is used when the packed op(B) block is at
// most half this size (see the task loop).
constexpr size_t kL1Bytes = 32 * 1024;
// Below this many multiply-adds a GEMM runs on the calling thread: waking the
// pool's sleeping workers costs 10-50 us (measured on a 2-vCPU VM), more than
// the work saved. (A GEMV's threshold is kGemvParallelMinFmas, gemm_kernels.h.)
constexpr double kParallelMinFmas = 1 << 20;

struct Operand {
  const float* p;
  ptrdiff_t rs, cs;  // see gemm_kernels.h
};

int round_up(int x, int m) { return (x + m - 1) / m * m; }
int ceil_div(int x, int m) { return (x + m - 1) / m; }

// The k-block size depends on K only, so the summation order of every output
// element is the same whatever the block grid or thread count.
int k_block(int K, int kc_max) {
  const int blocks = ceil_div(K, kc_max);
  return round_up(ceil_div(K, blocks), 8);
}

// Per-calling-thread packing buffers (workspace.h). Slot t belongs to pool thread t.
thread_local Workspace t_workspace("the GEMM packing workspace");
// op(A) packed once per call for all column blocks (see run()).
thread_local Workspace t_shared_a("the GEMM packing workspace");
// The shared packed op(A) is used up to this size (64 MiB); beyond it every
// block packs its own slice as it goes.
constexpr size_t kSharedAMaxFloats = size_t{16} << 20;

// Output blocks: the mr-row and nr-column micro-panels of C are dealt out
// evenly to mtiles x ntiles blocks (block sizes differ by one panel at most),
// each block at most about kMbMax x kNbMax. With several threads, blocks are
// split further until there are at least two per thread (dynamic scheduling
// then evens out the load); the dimension split is the one whose split
// re-packs less: more column blocks re-pack op(A) (M*K each), more row
// blocks re-pack op(B) (N*K each).
struct Grid {
  int m_panels, n_panels, mtiles, ntiles;
  int max_rows, max_cols;  // largest block, for the workspace
};

// Elements [begin, end) of block b when `panels` panels of `unit` elements
// (covering `total` elements) are dealt to `tiles` blocks.
inline void block_range(int b, int tiles, int panels, int unit, int total, int* begin, int* end) {
  *begin = (int)((long long)b * panels / tiles) * unit;
  *end = std::min(total, (int)((long long)(b + 1) * panels / tiles) * unit);
}

Grid choose_grid(const KernelSet& ks, int M, int N, int threads) {
  Grid g;
  g.m_panels = ceil_div(M, ks.mr);
  g.n_panels = ceil_div(N, ks.nr);
  g.mtiles = ceil_div(g.m_panels, std::max(1, kMbMax / ks.mr));
  g.ntiles = ceil_div(g.n_panels, std::max(1, kNbMax / ks.nr));
  const int want = threads > 1 ? 2 * threads : 1;
  while (g.mtiles * g.ntiles < want) {
    const bool can_m = g.m_panels >= 4 * g.mtiles;  // keep >= 2 panels per block after a split
    const bool can_n = g.n_panels >= 4 * g.ntiles;
    if (!can_m && !can_n) break;
    const double cost_n = (double)g.ntiles * M, cost_m = (double)g.mtiles * N;
    if (can_n && (!can_m || cost_n <= cost_m))
      g.ntiles *= 2;
    else
      g.mtiles *= 2;
  }
  g.max_rows = ceil_div(g.m_panels, g.mtiles) * ks.mr;
  g.max_cols = ceil_div(g.n_panels, g.ntiles) * ks.nr;
  return g;
}

// One thread's packing slot: a max_rows x kstep panel set of op(A) and a
// kstep x max_cols one of op(B), each with the packers' slack, 64-byte aligned.
size_t pack_slot_floats(int max_rows, int max_cols, int kstep) {
  const size_t a_floats = (size_t)max_rows * kstep + kPackSlack;
  const size_t b_floats = (size_t)max_cols * kstep + kPackSlack;
  return (a_floats + b_floats + 15) / 16 * 16;
}

// The shared packed op(A): one region per (row block, k-block), 0 when the
// product has one column block or the whole would pass kSharedAMaxFloats.
size_t shared_a_floats(const Grid& g, int kstep, int K) {
  const size_t a_region = ((size_t)g.max_rows * kstep + kPackSlack + 15) / 16 * 16;
  const size_t a_units = (size_t)g.mtiles * ceil_div(K, kstep);
  return g.ntiles > 1 && a_region * a_units <= kSharedAMaxFloats ? a_region * a_units : 0;
}

void scale_only(int M, int N, float beta, float* C, ptrdiff_t ldc) {
  if (beta != 0.0f) return;  // beta == 1: C unchanged
  for (int i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
}

// M == 1 or N == 1: a matrix-vector product, memory-bound; no packing.
// Returns false when the operand strides do not fit a GEMV kernel.
bool try_gemv(const KernelSet& ks, ThreadPool& pool, int M, int N, int K, float alpha,
              const Operand& A, const Operand& B, bool accumulate, float* C, ptrdiff_t ldc) {
  const bool parallel = pool.size() > 1 && (double)M * N * K >= kGemvParallelMinFmas;
  auto split = [&](int n, const std::function<void(size_t, size_t)>& fn) {
    if (parallel)
      pool.parallel_for((size_t)n, [&](size_t b, size_t e, int) { fn(b, e); });
    else
      fn(0, (size_t)n);
  };
  if (M == 1) {
    if (B.cs == 1) {  // op(B) rows contiguous (nn, tn): y = sum_p x_p * B[p, :]
      split(N, [&](size_t b, size_t e) {
        ks.axpy_rows((int)(e - b), K, alpha, A.p, A.cs, B.p + b, B.rs, accumulate, C + b);
      });
      return true;
    }
    if (B.rs == 1 && A.cs == 1) {  // nt: y_j = dot(x, W[j, :])
      split(N, [&](size_t b, size_t e) {
        ks.dot_rows((int)(e - b), K, alpha, A.p, B.p + b * B.cs, B.cs, accumulate, C + b, 1);
      });
      return true;
    }
    return false;
  }
  if (N == 1 && A.cs == 1 && B.rs == 1) {  // y_i = dot(A[i, :], b)
    split(M, [&](size_t b, size_t e) {
      ks.dot_rows((int)(e - b), K, alpha, B.p, A.p + b * A.rs, A.rs, accumulate, C + b * ldc, ldc);
    });
    return true;
  }
  return false;
}

void run(const KernelSet& ks, ThreadPool& pool, int M, int N, int K, float alpha,
         const Operand& A, const Operand& B, float beta, float* C, ptrdiff_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) return scale_only(M, N, beta, C, ldc);
  if ((M == 1 || N == 1) && try_gemv(ks, pool, M, N, K, alpha, A, B, beta != 0.0f, C, ldc)) return;

  const bool parallel = pool.size() > 1 && (double)M * N * K >= kParallelMinFmas;
  const int threads = parallel ? pool.size() : 1;
  const Grid g = choose_grid(ks, M, N, threads);
  const int kstep = k_block(K, ks.kc_max);
  const size_t a_floats = (size_t)g.max_rows * kstep + kPackSlack;
  const size_t slot = pack_slot_floats(g.max_rows, g.max_cols, kstep);
  float* ws = t_workspace.get(slot * threads);

  // With several column blocks per row block, every block would pack the
  // same slices of op(A) again (six times for a 256-token projection on two
  // threads). Instead pack each (row block, k-block) slice once up front, in
  // parallel, into its own region; the blocks then only pack op(B). The
  // packed values and the kernel calls are the same, so the bits are too.
  const int kblocks = ceil_div(K, kstep);
  const size_t a_region = (a_floats + 15) / 16 * 16;
  const size_t a_units = (size_t)g.mtiles * kblocks;
  const size_t shared_floats = shared_a_floats(g, kstep, K);
  const bool share_a = shared_floats > 0;
  float* shared_a = nullptr;
  if (share_a) {
    shared_a = t_shared_a.get(shared_floats);
    auto pack_unit = [&](size_t u) {
      int m0, m1;
      block_range((int)(u / kblocks), g.mtiles, g.m_panels, ks.mr, M, &m0, &m1);
      const int k0 = (int)(u % kblocks) * kstep;
      ks.pack_a(A.p + m0 * A.rs + k0 * A.cs, A.rs, A.cs, m1 - m0, std::min(kstep, K - k0),
                shared_a + a_region * u);
    };
    if (parallel) {
      pool.run_tasks(a_units, [&](size_t u, int) { pack_unit(u); });
    } else {
      for (size_t u = 0; u < a_units; ++u) pack_unit(u);
    }
  }

  auto task = [&](size_t t, int thread) {
    int m0, m1, n0, n1;
    block_range((int)(t / g.ntiles), g.mtiles, g.m_panels, ks.mr, M, &m0, &m1);
    block_range((int)(t % g.ntiles), g.ntiles, g.n_panels, ks.nr, N, &n0, &n1);
    const int rows = m1 - m0, cols = n1 - n0;
    float* pa = ws + slot * thread;
    float* pb = pa + a_floats;
    for (int k0 = 0; k0 < K; k0 += kstep) {
      const int kc = std::min(kstep, K - k0);
      if (share_a)
        pa = shared_a + a_region * ((t / g.ntiles) * kblocks + k0 / kstep);
      else
        ks.pack_a(A.p + m0 * A.rs + k0 * A.cs, A.rs, A.cs, rows, kc, pa);
      ks.pack_b(B.p + k0 * B.rs + n0 * B.cs, B.rs, B.cs, kc, cols, pb);
      const bool accumulate = k0 > 0 || beta != 0.0f;
      // Each call of the micro-kernel is one (row panel, column panel) pair;
      // the order only decides what stays in cache. Usually a kc x nr panel of
      // op(B) stays in L1 while the row panels stream past it. When the whole
      // packed op(B) block fits in L1 anyway (short kc, e.g. LoRA's rank), walk
      // along the rows of C instead, so C is touched in its memory order.
      const bool rows_outer = (size_t)kc * round_up(cols, ks.nr) * sizeof(float) <= kL1Bytes / 2;
      auto tile = [&](int i, int j) {
        const float* bp = pb + (size_t)j * kc;
        const int w = std::min(ks.nr, cols - j);
        float* c = C + (m0 + i) * ldc + n0 + j;
        if (ks.micro_narrow && 2 * w <= ks.nr) {
          if (i % (2 * ks.mr) == 0)
            ks.micro_narrow(kc, pa + (size_t)i * kc, bp, alpha, accumulate, c, ldc,
                            std::min(2 * ks.mr, rows - i), w);
        } else {
          ks.micro(kc, pa + (size_t)i * kc, bp, alpha, accumulate, c, ldc,
                   std::min(ks.mr, rows - i), w);
        }
      };
      if (rows_outer) {
        for (int i = 0; i < rows; i += ks.mr)
          for (int j = 0; j < cols; j += ks.nr) tile(i, j);
      } else {
        for (int j = 0; j < cols; j += ks.nr)
          for (int i = 0; i < rows; i += ks.mr) tile(i, j);
      }
    }
  };
  const size_t tasks = (size_t)g.mtiles * g.ntiles;
  if (parallel) {
    pool.run_tasks(tasks, task);
  } else {
    for (size_t t = 0; t < tasks; ++t) task(t, 0);
  }
}

void check_args(const char* op, int M, int N, int K, int lda, int lda_min, int ldb, int ldb_min,
                int ldc, float beta) {
  auto fail = [&](const std::string& what) {
    throw Error(std::string(op) + ": " + what + " (M=" + std::to_string(M) +
                ", N=" + std::to_string(N) + ", K=" + std::to_string(K) + ")");
  };
  if (M < 0 || N < 0 || K < 0) fail("negative dimension");
  if (beta != 0.0f && beta != 1.0f) fail("beta must be 0 or 1, got " + std::to_string(beta));
  if (M > 0 && N > 0 && K > 0) {
    if (lda < std::max(1, lda_min))
      fail("lda " + std::to_string(lda) + " is below " + std::to_string(lda_min));
    if (ldb < std::max(1, ldb_min))
      fail("ldb " + std::to_string(ldb) + " is below " + std::to_string(ldb_min));
  }
  if (M > 0 && N > 0 && ldc < std::max(1, N)) fail("ldc " + std::to_string(ldc) + " is below N");
}

}  // namespace

void gemm(const KernelSet& ks, ThreadPool& pool, Layout layout, int M, int N, int K, float alpha,
          const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  switch (layout) {
    case Layout::NT:
      check_args("gemm_nt", M, N, K, lda, K, ldb, K, ldc, beta);
      return run(ks, pool, M, N, K, alpha, {A, lda, 1}, {B, 1, ldb}, beta, C, ldc);
    case Layout::NN:
      check_args("gemm_nn", M, N, K, lda, K, ldb, N, ldc, beta);
      return run(ks, pool, M, N, K, alpha, {A, lda, 1}, {B, ldb, 1}, beta, C, ldc);
    case Layout::TN:
      check_args("gemm_tn", M, N, K, lda, M, ldb, N, ldc, beta);
      return run(ks, pool, M, N, K, alpha, {A, 1, lda}, {B, ldb, 1}, beta, C, ldc);
  }
}

#if defined(PS_HAVE_AVX2_KERNELS)
namespace {
bool cpu_has_avx512() {
  static const bool yes = avx512_supported();
  return yes;
}
}  // namespace

bool dot_rows_in_avx2_order(const KernelSet& ks) {
  return ks.dot_rows == avx2_kernels().dot_rows ||
         (cpu_has_avx512() && ks.dot_rows == avx512_kernels().dot_rows);
}
#endif

const KernelSet& kernels_for(const CpuBackend& backend) {
#if defined(PS_HAVE_AVX2_KERNELS)
  if (backend.use_avx2()) return cpu_has_avx512() ? avx512_kernels() : avx2_kernels();
#endif
  (void)backend;
  return portable_kernels();
}

GemmWorkspace gemm_workspace_floats(const KernelSet& ks, int M, int N, int K, int threads) {
  // as run(): nothing for an empty product or a GEMV
  if (M <= 1 || N <= 1 || K == 0) return {};
  const bool parallel = threads > 1 && (double)M * N * K >= kParallelMinFmas;
  const int used = parallel ? threads : 1;
  const Grid g = choose_grid(ks, M, N, used);
  const int kstep = k_block(K, ks.kc_max);
  return {pack_slot_floats(g.max_rows, g.max_cols, kstep) * used, shared_a_floats(g, kstep, K)};
}

const KernelSet& default_kernels() {
#if defined(PS_HAVE_AVX2_KERNELS)
  const CpuFeatures f = detect_cpu_features();
  if (f.avx2 && f.fma) return cpu_has_avx512() ? avx512_kernels() : avx2_kernels();
#endif
  return portable_kernels();
}

std::vector<const KernelSet*> usable_kernel_sets() {
  std::vector<const KernelSet*> sets{&portable_kernels()};
#if defined(PS_HAVE_AVX2_KERNELS)
  const CpuFeatures f = detect_cpu_features();
  if (f.avx2 && f.fma) sets.push_back(&avx2_kernels());
  if (cpu_has_avx512() && &avx512_kernels() != &avx2_kernels()) sets.push_back(&avx512_kernels());
#endif
  return sets;
}

}  // namespace gemm

void CpuBackend::gemm_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                         int ldb, float beta, float* C, int ldc) {
  gemm::gemm(gemm::kernels_for(*this), pool(), gemm::Layout::NT, M, N, K, alpha, A, lda, B, ldb,
             beta, C, ldc);
}

void CpuBackend::gemm_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                         int ldb, float beta, float* C, int ldc) {
  gemm::gemm(gemm::kernels_for(*this), pool(), gemm::Layout::NN, M, N, K, alpha, A, lda, B, ldb,
             beta, C, ldc);
}

void CpuBackend::gemm_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                         int ldb, float beta, float* C, int ldc) {
  gemm::gemm(gemm::kernels_for(*this), pool(), gemm::Layout::TN, M, N, K, alpha, A, lda, B, ldb,
             beta, C, ldc);
}

}  // namespace ps
