// The CPU-side CUDA simulator's own semantics (core/backend/cuda/sim/),
// against answers known in advance: built-in variables, barriers, warp
// collectives, the errors it must report (a divergent barrier, a shuffle
// naming an exited lane, a deadlock, a host pointer as a kernel argument),
// the hardware's launch limits, out-of-bounds accesses and stack overflows
// (observed from a forked child: they end the process like a GPU fault
// ends the context), the device memory limit behind CudaBackend's
// OutOfMemory, and the thread-order switch the parity test's race check uses.
// Only built in the simulator build (PS_CUDA_SIM).
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/sim/sim_control.h"
#include "check.h"
#include "engine_scenarios.h"
#include "error.h"

#ifndef PS_CUDA_SIM
#error "test_cuda_sim tests the CPU-side simulator: build it with PS_CUDA_SIM"
#endif

namespace {

constexpr int kLimitMb = 64;  // PS_CUDA_SIM_MEMORY_MB for this process (set first thing in main)

// ---- kernels -----------------------------------------------------------------

// Each thread records its linear thread id, block id and the dims it sees.
__global__ void index_kernel(int* out) {
  const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int nthreads = blockDim.x * blockDim.y * blockDim.z;
  int* o = out + 4 * (bid * nthreads + tid);
  o[0] = tid, o[1] = bid, o[2] = nthreads, o[3] = gridDim.x * gridDim.y * gridDim.z;
}

// Rotation through shared memory: correct only with the barrier between the
// write and the read.
__global__ void rotate_kernel(const int* in, int* out) {
  __shared__ int s[256];
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = in[blockIdx.x * n + t];
  __syncthreads();
  out[blockIdx.x * n + t] = s[(t + 1) % n];
}

// The same without the barrier: a data race the order switch exposes.
__global__ void racy_rotate_kernel(const int* in, int* out) {
  __shared__ int s[256];
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = in[blockIdx.x * n + t] + 1000 * static_cast<int>(blockIdx.x);
  out[blockIdx.x * n + t] = s[(t + 1) % n];
}

// Block 0 writes its shared array, every block reads it back unwritten:
// shared memory starts uninitialised in each block (the simulator: -1).
__global__ void stale_shared_kernel(int* out) {
  __shared__ int s[64];
  if (blockIdx.x == 0) {
    out[threadIdx.x] = 5;  // (written below; not read)
    s[threadIdx.x] = 5;
  } else {
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
  }
}

// cuda_common.cuh's block_sum, with or without its leading barrier. Without
// it, a warp that runs ahead into the second call overwrites shared[0]
// while other warps still read the first call's result from it.
__device__ int block_sum_int(int v, int* shared, bool leading_barrier) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (leading_barrier) __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int r = lane < warps ? shared[lane] : 0;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  if (threadIdx.x == 0) shared[0] = r;
  __syncthreads();
  return shared[0];
}
__global__ void two_sums_kernel(int* out, bool leading_barrier) {
  __shared__ int red[32];
  const int a = block_sum_int(1, red, leading_barrier);
  const int b = block_sum_int(2, red, leading_barrier);
  out[threadIdx.x] = a * 10000 + b;
}

__global__ void count_kernel(int* out) {
  out[threadIdx.x] = __syncthreads_count(threadIdx.x % 3 == 0);
}

// out[lane][0..7]: xor-butterfly sum, shfl_down sum (lane 0 meaningful),
// broadcast of lane 5, shfl_up by 1 within groups of 8, ballot of odd
// lanes, any(lane == 7), all(lane < 32), __activemask; dout: double xor-sum.
__global__ void warp_kernel(int* out, double* dout) {
  const int lane = threadIdx.x & 31;
  int x = lane + 1;
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  int y = lane + 1;
  for (int o = 16; o > 0; o >>= 1) y += __shfl_down_sync(0xffffffffu, y, o);
  const float b = __shfl_sync(0xffffffffu, 10.0f * lane, 5);
  const int up = __shfl_up_sync(0xffffffffu, lane, 1, 8);
  const unsigned ballot = __ballot_sync(0xffffffffu, lane & 1);
  const int any = __any_sync(0xffffffffu, lane == 7), all = __all_sync(0xffffffffu, lane < 32);
  double d = 0.5 * lane;
  for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
  int* r = out + 8 * threadIdx.x;
  r[0] = x, r[1] = y, r[2] = static_cast<int>(b), r[3] = up, r[4] = static_cast<int>(ballot), r[5] = any, r[6] = all;
  r[7] = static_cast<int>(__activemask());
  dout[threadIdx.x] = d;
}

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x >= 16) return;  // half the block leaves
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void two_barriers_kernel(int* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void shuffle_exited_lane_kernel(int* out) {
  if ((threadIdx.x & 31) >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void shuffle_partial_warp_kernel(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);  // blockDim 48: warp 1 has 16 lanes
}

__global__ void deadlock_kernel(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);
  else __syncthreads();
}

__global__ void write_kernel(float* x, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) x[i] = static_cast<float>(i);
}

__global__ void dynamic_shared_kernel(int* out, int n) {
  PS_DYNAMIC_SHARED(int, smem);
  for (int i = threadIdx.x; i < n; i += blockDim.x) smem[i] = i;
  __syncthreads();
  int s = 0;
  if (threadIdx.x == 0)
    for (int i = 0; i < n; ++i) s += smem[i];
  if (threadIdx.x == 0) *out = s;
}

__global__ void oob_read_kernel(const float* x, int i, float* out) { *out = x[i]; }
__global__ void oob_write_kernel(float* x, int i) { x[i] = 1.0f; }

// noinline: one frame per level (recursion inlined into itself makes bigger frames).
__device__ __attribute__((noinline)) int deep(int n) {
  volatile char frame[2048];
  frame[0] = static_cast<char>(n);
  return n == 0 ? 0 : deep(n - 1) + frame[0];
}
__global__ void stack_overflow_kernel(int* out) { *out = deep(100000); }

// ---- helpers -------------------------------------------------------------------

template <typename T>
T* dalloc(size_t n) {
  void* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) std::abort();
  return static_cast<T*>(p);
}
template <typename T>
std::vector<T> fetch(const T* d, size_t n) {
  std::vector<T> h(n);
  CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
  return h;
}

// Runs fn, expects a KernelError whose message contains every needle.
void expect_kernel_error(const char* what, const std::function<void()>& fn, std::vector<std::string> needles) {
  try {
    fn();
  } catch (const ps::cudasim::KernelError& e) {
    const std::string m = e.what();
    bool ok = true;
    for (const std::string& n : needles) ok = ok && m.find(n) != std::string::npos;
    std::printf("  %-34s reported: %s\n", what, m.c_str());
    if (!ok) pstest::fail(__FILE__, __LINE__, std::string(what) + ": message lacks an expected part: " + m);
    return;
  }
  pstest::fail(__FILE__, __LINE__, std::string(what) + ": no error reported");
}

// Runs fn in a forked child; returns its stderr and the signal that ended it (0: none).
std::string in_child(const std::function<void()>& fn, int* signal_out) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return err;
}

// ---- tests -------------------------------------------------------------------

void test_indices() {
  std::printf("built-in variables\n");
  const dim3 grid(3, 2, 2), block(8, 4, 2);
  const int threads = 64, blocks = 12;
  int* d = dalloc<int>(4 * threads * blocks);
  PS_LAUNCH(index_kernel, grid, block, 0, 0)(d);
  CHECK(cudaGetLastError() == cudaSuccess);
  const std::vector<int> h = fetch(d, 4 * threads * blocks);
  int bad = 0;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) {
      const int* o = &h[4 * (b * threads + t)];
      bad += o[0] != t || o[1] != b || o[2] != threads || o[3] != blocks;
    }
  CHECK(bad == 0);
  cudaFree(d);
}

void test_barriers() {
  std::printf("barriers and the thread-order switch\n");
  const int n = 96, blocks = 3;
  std::vector<int> in(n * blocks);
  for (int i = 0; i < n * blocks; ++i) in[i] = 7 * i + 1;
  int *din = dalloc<int>(in.size()), *dout = dalloc<int>(in.size());
  cudaMemcpy(din, in.data(), in.size() * sizeof(int), cudaMemcpyHostToDevice);
  for (bool reverse : {false, true}) {
    ps::cudasim::set_reverse_thread_order(reverse);
    PS_LAUNCH(rotate_kernel, blocks, n, 0, 0)(din, dout);
    const std::vector<int> h = fetch(dout, in.size());
    int bad = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < n; ++t) bad += h[b * n + t] != in[b * n + (t + 1) % n];
    CHECK(bad == 0);
  }
  // Without the barrier the result depends on the order: the race shows.
  std::vector<int> racy[2];
  for (int reverse = 0; reverse < 2; ++reverse) {
    ps::cudasim::set_reverse_thread_order(reverse == 1);
    PS_LAUNCH(racy_rotate_kernel, blocks, n, 0, 0)(din, dout);
    racy[reverse] = fetch(dout, in.size());
  }
  ps::cudasim::set_reverse_thread_order(false);
  CHECK(racy[0] != racy[1]);
  // Warps run ahead of each other: the missing barrier shows (in either order).
  int* dsum = dalloc<int>(128);
  for (bool leading : {true, false})
    for (bool reverse : {false, true}) {
      ps::cudasim::set_reverse_thread_order(reverse);
      PS_LAUNCH(two_sums_kernel, 1, 128, 0, 0)(dsum, leading);
      int wrong = 0;
      for (int v : fetch(dsum, 128)) wrong += v != 128 * 10000 + 256;
      std::printf("  block sum twice, %s leading barrier, %s order: %d of 128 threads wrong\n",
                  leading ? "with" : "without", reverse ? "reverse" : "forward", wrong);
      CHECK(leading ? wrong == 0 : wrong > 0);
    }
  ps::cudasim::set_reverse_thread_order(false);
  cudaFree(dsum);
  // Shared memory is uninitialised at each block's start: never the previous block's values.
  int* ds = dalloc<int>(3 * 64);
  PS_LAUNCH(stale_shared_kernel, 3, 64, 0, 0)(ds);
  const std::vector<int> st = fetch(ds, 3 * 64);
  CHECK(st[64] == -1 && st[3 * 64 - 1] == -1);
  cudaFree(ds);
  int* dc = dalloc<int>(96);
  PS_LAUNCH(count_kernel, 1, 96, 0, 0)(dc);  // a larger block first: its threads must not count in the next
  CHECK(fetch(dc, 96)[95] == 32);
  PS_LAUNCH(count_kernel, 1, 64, 0, 0)(dc);
  const std::vector<int> c = fetch(dc, 64);
  int bad = 0;
  for (int v : c) bad += v != 22;  // 0, 3, ..., 63
  CHECK(bad == 0);
  cudaFree(din), cudaFree(dout), cudaFree(dc);
}

void test_warp_collectives() {
  std::printf("warp collectives\n");
  int* d = dalloc<int>(8 * 64);
  double* dd = dalloc<double>(64);
  PS_LAUNCH(warp_kernel, 1, 64, 0, 0)(d, dd);
  const std::vector<int> h = fetch(d, 8 * 64);
  const std::vector<double> hd = fetch(dd, 64);
  int bad = 0;
  for (int t = 0; t < 64; ++t) {
    const int lane = t & 31;
    const int* r = &h[8 * t];
    bad += r[0] != 528;                                    // 1 + ... + 32
    if (lane == 0) bad += r[1] != 528;                     // the shfl_down tree ends in lane 0
    bad += r[2] != 50;                                     // lane 5's 10 * 5
    bad += r[3] != (lane % 8 == 0 ? lane : lane - 1);      // shfl_up keeps its own value at a group start
    bad += static_cast<unsigned>(r[4]) != 0xAAAAAAAAu;     // odd lanes
    bad += r[5] != 1 || r[6] != 1;
    bad += !((static_cast<unsigned>(r[7]) >> lane) & 1u);  // (which other lanes are active is the scheduler's business)
    bad += hd[t] != 248.0;                                 // 0.5 * (0 + ... + 31)
  }
  CHECK(bad == 0);
  cudaFree(d), cudaFree(dd);
}

void test_reported_errors() {
  std::printf("errors the simulator reports\n");
  int* d = dalloc<int>(64);
  expect_kernel_error("divergent __syncthreads", [&] { PS_LAUNCH(divergent_barrier_kernel, 1, 32, 0, 0)(d); },
                      {"divergent_barrier_kernel", "__syncthreads", "exited"});
  expect_kernel_error("different __syncthreads", [&] { PS_LAUNCH(two_barriers_kernel, 1, 32, 0, 0)(d); },
                      {"two_barriers_kernel", "different", "test_cuda_sim.cpp"});
  expect_kernel_error("shuffle naming an exited lane", [&] { PS_LAUNCH(shuffle_exited_lane_kernel, 1, 32, 0, 0)(d); },
                      {"shuffle_exited_lane_kernel", "__shfl_xor_sync", "exited"});
  expect_kernel_error("full mask on a partial warp", [&] { PS_LAUNCH(shuffle_partial_warp_kernel, 1, 48, 0, 0)(d); },
                      {"shuffle_partial_warp_kernel", "beyond this warp"});
  expect_kernel_error("deadlock", [&] { PS_LAUNCH(deadlock_kernel, 1, 32, 0, 0)(d); }, {"deadlock_kernel", "deadlock"});
  std::vector<int> host(64);
  expect_kernel_error("host pointer argument", [&] { PS_LAUNCH(index_kernel, 1, 1, 0, 0)(host.data()); },
                      {"index_kernel", "argument 0", "not device memory"});
  // The simulator is usable after each of them.
  PS_LAUNCH(count_kernel, 1, 64, 0, 0)(d);
  CHECK(fetch(d, 64)[5] == 22);
  cudaFree(d);
}

void test_launch_limits() {
  std::printf("launch configuration limits\n");
  float* x = dalloc<float>(2048);
  cudaMemset(x, 0, 2048 * sizeof(float));
  struct Bad {
    const char* what;
    dim3 grid, block;
    size_t shared;
    cudaError_t want;
  };
  const Bad bad[] = {
      {"1025 threads", dim3(1), dim3(1025), 0, cudaErrorInvalidConfiguration},
      {"block 64x32 (2048 threads)", dim3(1), dim3(64, 32), 0, cudaErrorInvalidConfiguration},
      {"block z 65", dim3(1), dim3(1, 1, 65), 0, cudaErrorInvalidConfiguration},
      {"grid y 65536", dim3(1, 65536), dim3(32), 0, cudaErrorInvalidConfiguration},
      {"grid 0", dim3(0), dim3(32), 0, cudaErrorInvalidConfiguration},
      {"48 KiB + 4 dynamic shared", dim3(1), dim3(32), 48 * 1024 + 4, cudaErrorInvalidValue},
  };
  for (const Bad& b : bad) {
    PS_LAUNCH(write_kernel, b.grid, b.block, b.shared, 0)(x, 2048);
    const cudaError_t e = cudaGetLastError();
    std::printf("  %-30s -> %s\n", b.what, cudaGetErrorName(e));
    CHECK(e == b.want);
    CHECK(cudaGetLastError() == cudaSuccess);  // not sticky
    CHECK(fetch(x, 1)[0] == 0.0f);            // nothing ran
  }
  // 1024 threads and exactly 48 KiB are fine; 64 KiB after the opt-in too.
  int* out = dalloc<int>(1);
  PS_LAUNCH(dynamic_shared_kernel, 1, 1024, 48 * 1024, 0)(out, 12 * 1024);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(fetch(out, 1)[0] == (12 * 1024 - 1) * 12 * 1024 / 2);
  CHECK(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess);
  PS_LAUNCH(dynamic_shared_kernel, 1, 256, 64 * 1024, 0)(out, 16 * 1024);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(fetch(out, 1)[0] == (16 * 1024 - 1) * 16 * 1024 / 2);
  cudaFree(x), cudaFree(out);
}

void test_memory_checks() {
  std::printf("device memory\n");
  float* x = dalloc<float>(1000);
  const std::vector<float> fresh = fetch(x, 1000);
  CHECK(std::isnan(fresh[0]) && std::isnan(fresh[999]));  // never written: NaN, not zeros
  std::vector<float> h(1001, 1.0f);
  CHECK(cudaMemcpy(x, h.data(), 1001 * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(x + 1, h.data(), 999 * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaMemset(x, 0, 1001 * sizeof(float)) == cudaErrorInvalidValue);
  CHECK(cudaFree(h.data()) == cudaErrorInvalidValue);
  cudaGetLastError();
  // 4000 bytes end inside a 256-byte granule: a write just past the end does
  // not fault, the padding check after the kernel reports it.
  expect_kernel_error("write into the padding", [&] { PS_LAUNCH(oob_write_kernel, 1, 1, 0, 0)(x, 1001); },
                      {"oob_write_kernel", "past the end of a 4000-byte device buffer", "bytes 4 to 7 after its end"});
  PS_LAUNCH(oob_write_kernel, 1, 1, 0, 0)(x, 999);  // in bounds: fine, and the padding was restored
  CHECK(fetch(x, 1000)[999] == 1.0f);
  cudaFree(x);

  // Reading one float past the end of a buffer (4096 bytes: it ends exactly
  // at the guard page) kills the process, and the report names the kernel.
  int sig = 0;
  std::string err = in_child(
      [] {
        float* y = dalloc<float>(1024);
        float* o = dalloc<float>(1);
        PS_LAUNCH(oob_read_kernel, 1, 1, 0, 0)(y, 1024, o);
      },
      &sig);
  std::printf("  out of bounds: signal %d, report: %s", sig, err.c_str());
  CHECK(sig == SIGSEGV);
  CHECK(err.find("oob_read_kernel") != std::string::npos);
  CHECK(err.find("0 bytes past the end of a 4096-byte device buffer") != std::string::npos);
  // In bounds, the same kernel is fine.
  err = in_child(
      [] {
        float* y = dalloc<float>(1024);
        float* o = dalloc<float>(1);
        PS_LAUNCH(oob_read_kernel, 1, 1, 0, 0)(y, 1023, o);
      },
      &sig);
  CHECK(sig == 0);

  // A buffer freed before: cudaFree keeps its addresses reserved, so a new
  // buffer does not take them and the kernel argument is named as freed.
  float* y = dalloc<float>(64);
  float* o = dalloc<float>(1);
  cudaFree(y);
  float* z = dalloc<float>(64);
  expect_kernel_error("use after free", [&] { PS_LAUNCH(oob_read_kernel, 1, 1, 0, 0)(y, 3, o); },
                      {"oob_read_kernel", "argument 0", "was freed", "256-byte device buffer"});
  CHECK(z != y);
  cudaFree(z), cudaFree(o);

  err = in_child(
      [] {
        int* o = dalloc<int>(1);
        PS_LAUNCH(stack_overflow_kernel, 1, 1, 0, 0)(o);
      },
      &sig);
  std::printf("  deep recursion: signal %d, report: %s", sig, err.c_str());
  CHECK(sig == SIGSEGV);
  CHECK(err.find("stack overflow") != std::string::npos && err.find("stack_overflow_kernel") != std::string::npos);
}

void test_backend_memory_limit() {
  std::printf("CudaBackend on the simulator (PS_CUDA_SIM_MEMORY_MB=%d)\n", kLimitMb);
  ps::CudaBackend be(0);
  std::printf("  name: %s\n  describe: %s\n", be.name().c_str(), be.describe().c_str());
  CHECK(be.name() == "cuda (simulated on the CPU)");
  CHECK(be.describe().find("simulated on the CPU") != std::string::npos);
  CHECK(be.device_info().name == "PEFT Studio CUDA simulator (CPU)");
  CHECK(be.device_info().total_bytes == static_cast<uint64_t>(kLimitMb) << 20);
  void* a = be.alloc(size_t(40) << 20);
  const ps::CudaDeviceInfo after = be.refreshed_info();
  CHECK(after.total_bytes - after.free_bytes >= (size_t(40) << 20));
  bool oom = false;
  try {
    be.alloc(size_t(40) << 20);
  } catch (const ps::OutOfMemory& e) {
    oom = true;
    std::printf("  second 40 MiB: %s\n", e.what());
    const std::string m = e.what();
    CHECK(m.find("free of 64 MiB") != std::string::npos);
    CHECK(m.find("PEFT Studio CUDA simulator (CPU)") != std::string::npos);
  }
  CHECK(oom);
  CHECK(cudaGetLastError() == cudaSuccess);  // the backend cleared it
  be.release(a);
  void* b = be.alloc(size_t(40) << 20);  // fits again
  be.release(b);
}

// The engine on a device that is nearly full: loading the weights fails with
// ps::OutOfMemory naming the tensor, no crash. (WeightStore rethrows the
// backend's OutOfMemory with its own text, so the device's free/total is not
// in this message; CudaBackend::alloc's own message is checked above.)
void test_engine_out_of_memory() {
  std::printf("engine on a full device\n");
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ps_cuda_sim_oom_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::vector<scenarios::Scenario> all = scenarios::all(dir);
  const scenarios::Scenario& sc = all.front();
  auto be = std::make_unique<ps::CudaBackend>(0);
  const ps::CudaDeviceInfo info = be->refreshed_info();
  void* hog = be->alloc(info.free_bytes - (size_t(16) << 10));  // leave 16 KiB
  bool oom = false;
  try {
    ps::Engine engine(sc.spec, sc.options, std::move(be));
    engine.load_weights(sc.refs);
  } catch (const ps::OutOfMemory& e) {
    oom = true;
    std::printf("  load_weights: %s\n", e.what());
    CHECK(std::string(e.what()).find("model tensor") != std::string::npos);
  }
  CHECK(oom);
  (void)hog;  // released with the process: the backend went away with the engine
  fs::remove_all(dir);
}

}  // namespace

int main() {
  // Before anything touches the simulator: the limit is read once.
  setenv("PS_CUDA_SIM_MEMORY_MB", std::to_string(kLimitMb).c_str(), 1);
  try {
    test_indices();
    test_barriers();
    test_warp_collectives();
    test_reported_errors();
    test_launch_limits();
    test_memory_checks();
    test_backend_memory_limit();
    test_engine_out_of_memory();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_cuda_sim");
}
