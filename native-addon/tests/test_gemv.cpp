// The row-dot GEMV of every kernel set (KernelSet::dot_rows: generation's
// every linear, y_j = alpha * dot(x, W[j, :]) (+ y_j)), on its own:
//   - against a float64 reference with the fp32 dot-product error bound
//       |got - want| <= (k + 4) * eps * (|alpha| * sum_p |x_p w_jp| + |y0_j|);
//   - the same bits however the rows are grouped into calls (all at once, one
//     by one, split at odd places): the fixed per-row summation order that
//     makes the threaded GEMV independent of the thread count, whatever the
//     grouping of rows by four and the prefetching of the next group do;
//   - the AVX2 and AVX-512 sets bit-identical (the 16-bit fused GEMVs
//     reproduce that one order, half_kernels.h);
//   - only y[j * incy] written (a sentinel between), and nothing read past
//     the last row or past x: both end at a page that may not be read (POSIX).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define PS_TEST_GUARD_PAGE 1
#endif

#include "backend/cpu/gemm_kernels.h"
#include "check.h"

using ps::gemm::KernelSet;

namespace {

constexpr float kSentinel = -12345.0f;

struct Case {
  int n, k, ldw, incy;
  bool accumulate;
  float alpha;
};

std::string describe(const Case& c) {
  return "n " + std::to_string(c.n) + " k " + std::to_string(c.k) + " ldw " + std::to_string(c.ldw) + " incy " +
         std::to_string(c.incy) + (c.accumulate ? " accumulate" : "");
}

// y laid out with stride incy; the gaps hold the sentinel.
std::vector<float> initial_y(const Case& c, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> y((size_t)c.n * c.incy, kSentinel);
  for (int j = 0; j < c.n; ++j) y[(size_t)j * c.incy] = d(rng);
  return y;
}

void check_reference(const Case& c, const float* x, const float* w, const std::vector<float>& y0,
                     const std::vector<float>& y, const std::string& what) {
  const double eps = std::ldexp(1.0, -24);
  int bad = 0;
  for (int j = 0; j < c.n; ++j) {
    double dot = 0, mag = 0;
    for (int p = 0; p < c.k; ++p) {
      const double t = (double)x[p] * w[(size_t)j * c.ldw + p];
      dot += t;
      mag += std::fabs(t);
    }
    const double prior = c.accumulate ? y0[(size_t)j * c.incy] : 0.0;
    const double want = c.alpha * dot + prior;
    const double tol = (c.k + 4) * eps * (std::fabs(c.alpha) * mag + std::fabs(prior)) + 1e-30;
    const double got = y[(size_t)j * c.incy];
    if (!(std::fabs(got - want) <= tol) && bad++ < 3)
      pstest::fail(__FILE__, __LINE__, what + ": row " + std::to_string(j) + " got " + std::to_string(got) +
                                           ", want " + std::to_string(want));
    for (int g = 1; g < c.incy; ++g)
      if (y[(size_t)j * c.incy + g] != kSentinel && bad++ < 3)
        pstest::fail(__FILE__, __LINE__, what + ": wrote between the outputs");
  }
}

std::vector<float> run(const KernelSet& ks, const Case& c, const float* x, const float* w,
                       const std::vector<float>& y0, int row_begin, int row_end, std::vector<float> y) {
  ks.dot_rows(row_end - row_begin, c.k, c.alpha, x, w + (size_t)row_begin * c.ldw, c.ldw, c.accumulate,
              y.data() + (size_t)row_begin * c.incy, c.incy);
  return y;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A bit mismatch tends to hit every case: the first few are reported, all counted.
void fail_bits(int line, const std::string& what) {
  static int reported = 0;
  if (reported++ < 6) pstest::fail(__FILE__, line, what);
  else ++pstest::failures();
}

void test_cases() {
  const std::vector<const KernelSet*> sets = ps::gemm::usable_kernel_sets();
  const KernelSet* avx2 = nullptr;
  for (const KernelSet* ks : sets)
    if (std::string(ks->name) == "avx2") avx2 = ks;
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  int checked = 0;
  for (int n : {1, 3, 4, 5, 7, 8, 9, 12, 13, 64, 301})
    for (int k : {1, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 576, 1000})
      for (int variant = 0; variant < 3; ++variant) {
        const Case c{n, k, k + (variant == 1 ? 3 : 0), variant == 2 ? 3 : 1, variant != 0,
                     variant == 0 ? 1.0f : -0.75f};
        std::vector<float> x(k), w((size_t)n * c.ldw);
        for (auto& v : x) v = d(rng);
        for (auto& v : w) v = d(rng);
        const std::vector<float> y0 = initial_y(c, rng);
        std::vector<float> first_avx2;
        for (const KernelSet* ks : sets) {
          const std::string what = std::string(ks->name) + " dot_rows " + describe(c);
          const std::vector<float> all = run(*ks, c, x.data(), w.data(), y0, 0, n, y0);
          check_reference(c, x.data(), w.data(), y0, all, what);
          ++checked;
          // Row by row, and in two calls split after an odd number of rows.
          std::vector<float> one = y0;
          for (int j = 0; j < n; ++j) one = run(*ks, c, x.data(), w.data(), y0, j, j + 1, one);
          if (!same_bits(one, all)) fail_bits(__LINE__, what + ": row by row differs");
          const int split = n / 3 | 1;
          std::vector<float> two = run(*ks, c, x.data(), w.data(), y0, 0, std::min(split, n), y0);
          if (split < n) two = run(*ks, c, x.data(), w.data(), y0, split, n, two);
          if (!same_bits(two, all)) fail_bits(__LINE__, what + ": split at row " + std::to_string(split) + " differs");
          if (ks == avx2) first_avx2 = all;
          if (avx2 && std::string(ks->name) == "avx512" && !same_bits(all, first_avx2))
            fail_bits(__LINE__, what + ": differs from the avx2 set");
        }
      }
  std::printf("  %d dot_rows results checked (sets:", checked);
  for (const KernelSet* ks : sets) std::printf(" %s", ks->name);
  std::printf(")\n");
}

#if defined(PS_TEST_GUARD_PAGE)
// W's last row and x end exactly where an unreadable page begins: a load past
// either (a 16-float step over an 8-float tail, say) crashes the test.
void test_no_read_past_the_end() {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t span = 64 * page;
  char* base = static_cast<char*>(mmap(nullptr, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK(base != MAP_FAILED);
  if (base == MAP_FAILED) return;
  CHECK(mprotect(base + span, page, PROT_NONE) == 0);
  float* end = reinterpret_cast<float*>(base + span);
  int runs = 0;
  for (const KernelSet* ks : ps::gemm::usable_kernel_sets())
    for (int n : {1, 4, 9})
      for (int k : {1, 8, 9, 16, 24, 25, 40}) {
        std::vector<float> ones(std::max(n, 1) * (size_t)k, 0.5f), y(n, 0.0f);
        // W's last row at the end; x elsewhere.
        float* w = end - (size_t)n * k;
        for (size_t i = 0; i < (size_t)n * k; ++i) w[i] = 0.25f;
        ks->dot_rows(n, k, 1.0f, ones.data(), w, k, false, y.data(), 1);
        for (int j = 0; j < n; ++j) CHECK(y[j] == 0.125f * k);
        // x at the end; W elsewhere.
        float* x = end - k;
        for (int p = 0; p < k; ++p) x[p] = 0.25f;
        ks->dot_rows(n, k, 1.0f, x, ones.data(), k, false, y.data(), 1);
        for (int j = 0; j < n; ++j) CHECK(y[j] == 0.125f * k);
        runs += 2;
      }
  munmap(base, span + page);
  std::printf("  %d GEMVs ending at an unreadable page\n", runs);
}
#endif

}  // namespace

int main() {
  test_cases();
#if defined(PS_TEST_GUARD_PAGE)
  test_no_read_past_the_end();
#endif
  return pstest::finish("test_gemv");
}
