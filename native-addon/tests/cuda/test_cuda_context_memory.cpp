// Calibrates the memory estimate's CUDA context allowance (core/memory_estimate.h
// kCudaContextBytes, 512 MiB) on a real GPU: how much device memory the
// process holds
//   1. right after the context is created (cudaFree(0)),
//   2. after a CudaBackend is made (status word; cuBLASLt's handle and its
//      32 MiB workspace when cuBLASLt loads),
//   3. after its first kernels (a fill and a 64 x 64 GEMM: our module and
//      cuBLASLt's kernels load lazily, CUDA_MODULE_LOADING=LAZY being the
//      default since CUDA 12.2), and in bf16 on a GPU with bf16 tensor cores,
// measured per process with nvidia-smi (other tests running at the same time
// do not count) or, without it, as the device's total - free.
// The runtime's share (3. minus the cuBLASLt workspace, which the estimate
// counts on its own) must stay within the allowance: otherwise the test fails
// saying what to raise it to (only on a per-process reading: the device-wide
// one also counts other processes). The figures go to stdout and, on the GPU
// machine (scripts/gpu-check.sh runs every tests/cuda test through CTest),
// to $OUT/cuda-context-memory.txt when $OUT is set.
// Exits 77 (CTest: skipped) without a device, and in the simulator build
// (the simulator has no context to measure).
#include <cstdio>

#ifdef PS_CUDA_SIM
int main() {
  std::puts("test_cuda_context_memory: skipped: the simulator has no CUDA context to measure");
  return 77;
}
#else

#include <cuda_runtime.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cuda/cublaslt/lt_gemm.h"
#include "backend/cuda/cuda_backend.h"
#include "memory_estimate.h"

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// This process's device memory in bytes as the driver accounts it
// (nvidia-smi --query-compute-apps), or -1 when nvidia-smi cannot say (not
// installed, or another PID namespace).
long long process_bytes() {
  FILE* p = popen("nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null", "r");
  if (!p) return -1;
  long long found = -1;
  char line[256];
  const long me = static_cast<long>(getpid());
  while (std::fgets(line, sizeof line, p)) {
    long pid = 0;
    long long mib = 0;
    if (std::sscanf(line, "%ld , %lld", &pid, &mib) == 2 && pid == me) found = mib * 1024 * 1024;
  }
  pclose(p);
  return found;
}

// total - free of the device (every process's use, the driver's reservations included).
long long device_used_bytes() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return -1;
  return static_cast<long long>(total_b - free_b);
}

struct Reading {
  const char* stage;
  long long process, device;
};

Reading read(const char* stage) {
  cudaDeviceSynchronize();
  return {stage, process_bytes(), device_used_bytes()};
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_cuda_context_memory: skipped: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    std::vector<Reading> r;
    if (cudaSetDevice(0) != cudaSuccess || cudaFree(nullptr) != cudaSuccess) {
      std::printf("test_cuda_context_memory: cannot create a context on device 0\n");
      return 1;
    }
    r.push_back(read("context (cudaFree(0))"));
    ps::CudaBackend be(0);
    r.push_back(read("CudaBackend made"));
    const int n = 64;
    float* a = static_cast<float*>(be.alloc(n * n * sizeof(float)));
    float* b = static_cast<float*>(be.alloc(n * n * sizeof(float)));
    float* c = static_cast<float*>(be.alloc(n * n * sizeof(float)));
    be.fill(a, 1.0f, n * n);
    be.fill(b, 0.5f, n * n);
    be.gemm_nt(n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    std::vector<float> h(n * n);
    be.download(h.data(), c, h.size() * sizeof(float));
    const bool product_ok = h[0] == 32.0f && h[n * n - 1] == 32.0f;
    r.push_back(read("first kernels (fill, fp32 GEMM)"));
    const ps::CudaDeviceInfo& info = be.device_info();
    if (info.major >= 8) {
      be.set_gemm_precision(ps::CudaBackend::GemmPrecision::Bf16);
      be.gemm_nt(n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      r.push_back(read("first bf16 GEMM"));
    }
    const Reading& last = r.back();
    const bool per_process = last.process >= 0;
    const long long used = per_process ? last.process : last.device;
    const long long workspace = be.gemm_uses_cublaslt() ? static_cast<long long>(ps::cublaslt::Gemm::kWorkspaceBytes) : 0;
    const long long runtime = used - workspace;
    const long long allowance = static_cast<long long>(ps::kCudaContextBytes);
    const char* env = std::getenv("CUDA_MODULE_LOADING");

    std::string text;
    char buf[512];
    std::snprintf(buf, sizeof buf, "cuda context memory: device 0 %s (compute capability %d.%d, %.0f MiB), CUDA_MODULE_LOADING=%s, GEMM: %s\n",
                  info.name.c_str(), info.major, info.minor, info.total_bytes / kMiB, env ? env : "(unset: lazy by default since 12.2)",
                  be.gemm_description().c_str());
    text += buf;
    std::snprintf(buf, sizeof buf, "  measured: %s\n",
                  per_process ? "this process, nvidia-smi --query-compute-apps" : "the device's total - free (nvidia-smi could not say)");
    text += buf;
    for (const Reading& x : r) {
      std::snprintf(buf, sizeof buf, "  %-34s process %8.1f MiB   device total-free %8.1f MiB\n", x.stage,
                    x.process >= 0 ? x.process / kMiB : -1.0, x.device >= 0 ? x.device / kMiB : -1.0);
      text += buf;
    }
    std::snprintf(buf, sizeof buf, "  runtime and modules (last - cuBLASLt workspace %.0f MiB): %.1f MiB; allowance kCudaContextBytes %.0f MiB: %s\n",
                  workspace / kMiB, runtime / kMiB, allowance / kMiB,
                  runtime <= allowance ? "covered" : "TOO LOW: raise kCudaContextBytes in core/memory_estimate.h");
    text += buf;
    std::fputs(text.c_str(), stdout);
    if (const char* out = std::getenv("OUT")) {
      const std::string file = std::string(out) + "/cuda-context-memory.txt";
      if (FILE* f = std::fopen(file.c_str(), "w")) {
        std::fputs(text.c_str(), f);
        std::fclose(f);
      }
    }
    be.release(a);
    be.release(b);
    be.release(c);
    if (!product_ok) {
      std::printf("test_cuda_context_memory: the 64 x 64 product is wrong (%g, expected 32)\n", h[0]);
      return 1;
    }
    if (used < 0) {
      std::printf("test_cuda_context_memory: no reading (neither nvidia-smi nor cudaMemGetInfo answered)\n");
      return 1;
    }
    // Only a per-process reading can fail the check: the device-wide one also counts other processes
    // (CTest runs tests in parallel) and the driver's reservations.
    return runtime <= allowance || !per_process ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("test_cuda_context_memory: %s\n", e.what());
    return 1;
  }
}

#endif
