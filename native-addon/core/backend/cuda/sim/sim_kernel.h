// The CUDA kernel language in plain C++, for the simulator.
//
// Execution model (scheduler.cpp): the blocks of a grid run one after
// another; the threads of a block run as fibers on one OS thread and switch
// ONLY at __syncthreads and warp collectives (shuffles, votes, __syncwarp).
// So between two such points a thread's code runs alone, which makes
// atomics trivially atomic and `__shared__` simply `static` storage (one
// block at a time; poisoned before each block). The built-in variables are
// globals the scheduler sets before it resumes a thread.
//
// Checked at run time (a ps::cudasim::KernelError naming the kernel, the
// block, the thread and the source line): a __syncthreads that not every
// thread of the block reaches, or threads waiting at different barriers;
// a warp collective whose mask names an exited or missing lane, lanes that
// disagree about the operation or mask, a calling lane outside its own mask;
// a deadlock. The math is the host's libm (glibc: < 1 ulp where CUDA
// documents up to 2 ulp for expf/logf etc.); `_rn` intrinsics are single
// IEEE roundings, never contracted into a multiply-add.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "sim_types.h"

// ---- qualifiers ------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
// Static shared memory is static storage in one ELF section, which the
// scheduler fills with 0xFF before each block (uninitialised: NaN / -1, not
// the previous block's values); one block runs at a time.
#define __shared__ static __attribute__((section("ps_sim_shared")))
#define __forceinline__ __inline__
#define __launch_bounds__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))

#define PS_SIM_STR2(x) #x
#define PS_SIM_STR(x) PS_SIM_STR2(x)
#define PS_SIM_SITE __FILE__ ":" PS_SIM_STR(__LINE__)

// ---- built-in variables (set per simulated thread by the scheduler) --------
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

namespace ps {
namespace cudasim {

// An error found while running a kernel (or in its launch arguments).
class KernelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class WarpOp { ShflIdx, ShflXor, ShflDown, ShflUp, Ballot, Any, All, SyncWarp };

// scheduler.cpp
void syncthreads(const char* site);
// __syncthreads_count/_and/_or: a barrier that also reduces pred over the block.
int syncthreads_reduce(int pred, int how, const char* site);  // how: 0 count, 1 and, 2 or
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, const char* site);
unsigned active_mask();
void* dynamic_shared_base();
void check_stack_guard();

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable<T>::value && (sizeof(T) == 4 || sizeof(T) == 8),
                "the simulator shuffles 4- and 8-byte values");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
template <typename T>
inline T shfl(WarpOp op, const char* site, unsigned mask, T v, int arg, int width = 32) {
  return from_bits<T>(warp_collective(op, mask, to_bits(v), arg, width, site));
}

template <typename T>
inline T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_base());
}

}  // namespace cudasim
}  // namespace ps

// ---- barriers and warp collectives (macros: errors name the source line) ---
#define __syncthreads() ::ps::cudasim::syncthreads(PS_SIM_SITE)
#define __syncthreads_count(pred) ::ps::cudasim::syncthreads_reduce((pred), 0, PS_SIM_SITE)
#define __syncthreads_and(pred) ::ps::cudasim::syncthreads_reduce((pred), 1, PS_SIM_SITE)
#define __syncthreads_or(pred) ::ps::cudasim::syncthreads_reduce((pred), 2, PS_SIM_SITE)
#define __syncwarp(...) \
  ((void)::ps::cudasim::warp_collective(::ps::cudasim::WarpOp::SyncWarp, ps_sim_mask_or_full(__VA_ARGS__), 0, 0, 32, PS_SIM_SITE))
#define __shfl_sync(mask, v, ...) ::ps::cudasim::shfl(::ps::cudasim::WarpOp::ShflIdx, PS_SIM_SITE, (mask), (v), __VA_ARGS__)
#define __shfl_xor_sync(mask, v, ...) ::ps::cudasim::shfl(::ps::cudasim::WarpOp::ShflXor, PS_SIM_SITE, (mask), (v), __VA_ARGS__)
#define __shfl_down_sync(mask, v, ...) ::ps::cudasim::shfl(::ps::cudasim::WarpOp::ShflDown, PS_SIM_SITE, (mask), (v), __VA_ARGS__)
#define __shfl_up_sync(mask, v, ...) ::ps::cudasim::shfl(::ps::cudasim::WarpOp::ShflUp, PS_SIM_SITE, (mask), (v), __VA_ARGS__)
#define __ballot_sync(mask, pred) \
  static_cast<unsigned>(::ps::cudasim::warp_collective(::ps::cudasim::WarpOp::Ballot, (mask), (pred) ? 1u : 0u, 0, 32, PS_SIM_SITE))
#define __any_sync(mask, pred) \
  static_cast<int>(::ps::cudasim::warp_collective(::ps::cudasim::WarpOp::Any, (mask), (pred) ? 1u : 0u, 0, 32, PS_SIM_SITE))
#define __all_sync(mask, pred) \
  static_cast<int>(::ps::cudasim::warp_collective(::ps::cudasim::WarpOp::All, (mask), (pred) ? 1u : 0u, 0, 32, PS_SIM_SITE))
inline unsigned ps_sim_mask_or_full(unsigned mask = 0xffffffffu) { return mask; }
inline unsigned __activemask() { return ::ps::cudasim::active_mask(); }
// Fences order memory between threads; one thread runs at a time here.
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- atomics (one thread runs at a time: a plain read-modify-write) --------
template <typename T, typename U>
inline T atomicAdd(T* a, U v) { T old = *a; *a = static_cast<T>(old + static_cast<T>(v)); return old; }
template <typename T, typename U>
inline T atomicSub(T* a, U v) { T old = *a; *a = static_cast<T>(old - static_cast<T>(v)); return old; }
template <typename T, typename U>
inline T atomicExch(T* a, U v) { T old = *a; *a = static_cast<T>(v); return old; }
template <typename T, typename U>
inline T atomicMin(T* a, U v) { T old = *a; if (static_cast<T>(v) < old) *a = static_cast<T>(v); return old; }
template <typename T, typename U>
inline T atomicMax(T* a, U v) { T old = *a; if (static_cast<T>(v) > old) *a = static_cast<T>(v); return old; }
template <typename T, typename U, typename W>
inline T atomicCAS(T* a, U compare, W v) { T old = *a; if (old == static_cast<T>(compare)) *a = static_cast<T>(v); return old; }
template <typename T, typename U>
inline T atomicAnd(T* a, U v) { T old = *a; *a = old & static_cast<T>(v); return old; }
template <typename T, typename U>
inline T atomicOr(T* a, U v) { T old = *a; *a = old | static_cast<T>(v); return old; }
template <typename T, typename U>
inline T atomicXor(T* a, U v) { T old = *a; *a = old ^ static_cast<T>(v); return old; }
inline unsigned atomicInc(unsigned* a, unsigned limit) { unsigned old = *a; *a = old >= limit ? 0u : old + 1; return old; }
inline unsigned atomicDec(unsigned* a, unsigned limit) { unsigned old = *a; *a = (old == 0 || old > limit) ? limit : old - 1; return old; }

// ---- loads ------------------------------------------------------------------
template <typename T>
inline T __ldg(const T* p) { return *p; }

// ---- bit casts and conversions ---------------------------------------------
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline int __double2hiint(double d) { return static_cast<int>(__double_as_longlong(d) >> 32); }
inline int __double2loint(double d) { return static_cast<int>(__double_as_longlong(d) & 0xffffffffLL); }
// Conversions with an explicit rounding (the host's default mode is nearest-even).
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(std::ceil(x)); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(std::nearbyint(x)); }
inline long long __float2ll_rn(float x) { return static_cast<long long>(std::nearbyint(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
inline float __double2float_rn(double x) { return static_cast<float>(x); }
inline int __double2int_rn(double x) { return static_cast<int>(std::nearbyint(x)); }

// ---- arithmetic intrinsics: IEEE round-to-nearest, never contracted --------
// nvcc never fuses an `_rn` intrinsic into a multiply-add, even where it
// contracts plain a*b+c (its default --fmad=true). ps_sim_opaque hides a
// value from the compiler's contraction, so these stay single roundings also
// in a build that contracts the rest like nvcc (CMake PS_CUDA_SIM_FMA).
template <typename T>
inline T ps_sim_opaque(T v) {
#if defined(__x86_64__)
  asm volatile("" : "+x"(v));
#elif defined(__aarch64__)
  asm volatile("" : "+w"(v));
#else
  volatile T t = v;
  v = t;
#endif
  return v;
}
#define PS_SIM_RN(type, name, expr)                              \
  inline type name(type a, type b) {                             \
    a = ps_sim_opaque(a);                                        \
    b = ps_sim_opaque(b);                                        \
    return ps_sim_opaque(static_cast<type>(expr));               \
  }
PS_SIM_RN(float, __fadd_rn, a + b)
PS_SIM_RN(float, __fsub_rn, a - b)
PS_SIM_RN(float, __fmul_rn, a * b)
PS_SIM_RN(float, __fdiv_rn, a / b)
PS_SIM_RN(double, __dadd_rn, a + b)
PS_SIM_RN(double, __dsub_rn, a - b)
PS_SIM_RN(double, __dmul_rn, a * b)
PS_SIM_RN(double, __ddiv_rn, a / b)
#undef PS_SIM_RN
inline float __frcp_rn(float a) { return ps_sim_opaque(1.0f / ps_sim_opaque(a)); }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return std::isnan(x) ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }

// ---- fast-math intrinsics, built like the hardware's approximations ---------
// __expf is ex2.approx(x * log2(e)): the product rounded to float first, which
// is the main source of its documented error (2 + 1.16 |x| ulp on sm_90).
inline float __expf(float x) { return std::exp2(__fmul_rn(x, 1.44269504088896341f)); }
inline float __exp10f(float x) { return std::exp2(__fmul_rn(x, 3.32192809488736235f)); }
inline float __logf(float x) { return __fmul_rn(std::log2(x), 0.693147180559945309f); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return __fmul_rn(std::log2(x), 0.301029995663981195f); }
inline float __powf(float x, float y) { return std::exp2(__fmul_rn(y, std::log2(x))); }
inline float __fdividef(float a, float b) { return a * (1.0f / b); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline void __sincosf(float x, float* s, float* c) { *s = std::sin(x); *c = std::cos(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __frsqrt_rn(float x) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(x))); }

// ---- integer intrinsics ------------------------------------------------------
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline int __mul24(int a, int b) { return (a << 8 >> 8) * (b << 8 >> 8); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32); }

// CUDA's global min/max overloads (device code calls them unqualified).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

inline long long clock64() {
  static long long ticks = 0;
  return ++ticks;
}
