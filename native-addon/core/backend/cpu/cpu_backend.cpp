// Memory and feature detection of the CPU backend; the ops live beside it.
#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "error.h"
#include "backend/cpu/attention_buffers.h"
#include "backend/cpu/gemm_kernels.h"

#if defined(_MSC_VER)
#include <intrin.h>
#include <malloc.h>
#endif

namespace ps {

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  int info[4];
  __cpuidex(info, 1, 0);
  f.fma = (info[2] >> 12) & 1;
  f.f16c = (info[2] >> 29) & 1;
  bool osxsave = (info[2] >> 27) & 1;
  __cpuidex(info, 7, 0);
  f.avx2 = osxsave && ((info[1] >> 5) & 1);
#endif
  return f;
}

CpuBackend::CpuBackend(int threads, bool force_portable) : pool_(new ThreadPool(threads)) {
#if defined(PS_HAVE_AVX2_KERNELS)
  CpuFeatures f = detect_cpu_features();
  use_avx2_ = !force_portable && f.avx2 && f.fma;
#else
  (void)force_portable;
#endif
  set_avx512_attention(true);
}

void CpuBackend::set_avx512_attention(bool on) {
#if defined(PS_HAVE_AVX2_KERNELS)
  use_avx512_attention_ = on && use_avx2_ && gemm::avx512_supported();
#else
  (void)on;
#endif
}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::describe() const {
  // The GEMM may go further than the other ops (AVX-512 where the CPU has it).
  return std::string("cpu (") + (use_avx2_ ? "avx2+fma" : "portable") + " kernels, gemm " +
         gemm::kernels_for(*this).name + ", " + std::to_string(threads()) + (threads() == 1 ? " thread)" : " threads)");
}

void* CpuBackend::alloc(size_t bytes) {
  if (bytes == 0) bytes = 64;
  size_t rounded = (bytes + 63) / 64 * 64;
#if defined(_MSC_VER)
  void* p = _aligned_malloc(rounded, 64);
#else
  void* p = std::aligned_alloc(64, rounded);
#endif
  if (!p) throw OutOfMemory("a CPU buffer", bytes);
  return p;
}

void CpuBackend::release(void* p) {
#if defined(_MSC_VER)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

void CpuBackend::upload(void* dst, const void* host, size_t bytes) { std::memcpy(dst, host, bytes); }
void CpuBackend::download(void* host, const void* src, size_t bytes) { std::memcpy(host, src, bytes); }

void CpuBackend::fill(float* x, float value, size_t n) {
  pool_->parallel_for(n, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) x[i] = value;
  });
}

void CpuBackend::copy(float* dst, const float* src, size_t n) {
  pool_->parallel_for(n, [&](size_t b, size_t e, int) {
    std::memcpy(dst + b, src + b, (e - b) * sizeof(float));
  });
}

}  // namespace ps
