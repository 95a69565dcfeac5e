// The CUDA backend's device handling: device discovery and information,
// memory (alloc/release/upload/download), fill/copy, reusable scratch
// buffers and the bad-index status word. The ops live beside it.
#include "cuda_backend.h"

#include <string>

#include "cuda_common.cuh"
#include "gemm_bf16.h"
#ifndef PS_CUDA_SIM
#include "nvml/nvml_memory.h"
#endif
#include "error.h"

namespace ps {

namespace cuda {
void throw_cuda_error(cudaError_t err, const char* what) {
  throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err) + " (" +
              cudaGetErrorName(err) + ")");
}
void nf4_upload_code_table();  // nf4.cu
}  // namespace cuda

namespace {

std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

__global__ void fill_kernel(float* x, float value, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    x[i] = value;
}

}  // namespace

namespace {
// "13.0" from the runtime's 13000.
std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// Why the runtime counts no device, and what to do.
std::string why_no_device(cudaError_t err) {
  const std::string code = std::string(" (") + cudaGetErrorName(err) + ")";
  if (err == cudaErrorInsufficientDriver) {
    // Both ask nothing of a device: they answer without a usable driver.
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);  // 0 when no driver is installed
    cudaRuntimeGetVersion(&runtime);
    cudaGetLastError();
    if (driver == 0)
      return "no NVIDIA driver is installed" + code + ": install the NVIDIA driver for this GPU (nvidia-smi must list it)";
    return "the NVIDIA driver supports CUDA " + cuda_version(driver) + ", older than the CUDA " + cuda_version(runtime) +
           " runtime this engine is built with" + code + ": update the NVIDIA driver to one that supports CUDA " +
           cuda_version(runtime) + " or later (nvidia-smi shows the CUDA version a driver supports)";
  }
  if (err == cudaErrorNoDevice)
    return "the NVIDIA driver sees no GPU" + code + ": check that nvidia-smi lists it, and that CUDA_VISIBLE_DEVICES (if set) names it";
  return std::string(cudaGetErrorString(err)) + code;
}
}  // namespace

int cuda_device_count(std::string* reason) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    if (reason) *reason = why_no_device(err);
    return 0;
  }
  if (n == 0 && reason) *reason = "the CUDA runtime found no device";
  return n;
}

CudaDeviceInfo cuda_device_info(int device) {
  std::string why;
  const int n = cuda_device_count(&why);
  if (device < 0 || device >= n)
    throw Error("CUDA device " + std::to_string(device) + " does not exist (" +
                (n ? std::to_string(n) + " device(s) found" : why) +
                "): is the NVIDIA driver installed and the GPU visible?");
  cudaDeviceProp prop;
  cuda::check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  CudaDeviceInfo info;
  info.index = device;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_bytes = prop.totalGlobalMem;
#ifndef PS_CUDA_SIM
  // Free memory from NVML first: it needs no CUDA context and sees every
  // device (nvml/nvml_memory.h says why that matters for the estimate).
  const nvml::Memory m = nvml::memory_by_pci(prop.pciDomainID, prop.pciBusID, prop.pciDeviceID);
  if (m.ok) {
    info.free_bytes = m.free_bytes;
    info.total_bytes = m.total_bytes;
    return info;
  }
#endif
  // Without NVML: the runtime's figure, for the current device only (this
  // creates the process's context there; other devices report 0 free).
  int current = 0;
  cuda::check(cudaGetDevice(&current), "cudaGetDevice");
  if (current == device) {
    size_t free_b = 0, total_b = 0;
    cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    info.free_bytes = free_b;
    info.total_bytes = total_b;
  }
  return info;
}

CudaBackend::CudaBackend(int device) {
  info_ = cuda_device_info(device);  // throws with a clear message when absent
  if (info_.major < 7 || (info_.major == 7 && info_.minor < 5))
    throw Error("CUDA device " + std::to_string(device) + " (" + info_.name + ") has compute capability " +
                std::to_string(info_.major) + "." + std::to_string(info_.minor) +
                "; this build supports 7.5 (Turing) and newer");
  cuda::check(cudaSetDevice(device), "cudaSetDevice");
  info_ = cuda_device_info(device);  // free memory as seen from this device
  cuda::check(cudaMalloc(reinterpret_cast<void**>(&status_), 4 * sizeof(int)), "cudaMalloc (status word)");
  try {  // a throwing constructor runs no destructor: free the status word here
    cuda::check(cudaMemset(status_, 0, 4 * sizeof(int)), "cudaMemset (status word)");
    cuda::nf4_upload_code_table();
    // The GEMM choice (cuBLASLt or the own kernels) is settled here, once: a
    // forced but missing cuBLASLt fails now, not at the first product, and
    // describe() (which may run on another thread during a step) only reads it.
    lt_gemm();
    cuda::gemm_bf16_kernel_choice();  // PEFT_STUDIO_GEMM_BF16 checked now, not at the first product
  } catch (...) {
    cudaFree(status_);
    throw;
  }
}

CudaBackend::~CudaBackend() {
  for (void* p : scratch_)
    if (p) cudaFree(p);
  if (status_) cudaFree(status_);
}

std::string CudaBackend::describe() const {
#ifdef PS_CUDA_SIM
  return "cuda (simulated on the CPU: " + info_.name + ", " + mib(info_.total_bytes) +
         " device memory limit, no GPU; GEMM: " + gemm_description() + ", " + precision_description() +
         "; attention: " + attention_description() + ")";
#else
  return "cuda (" + info_.name + ", compute capability " + std::to_string(info_.major) + "." +
         std::to_string(info_.minor) + ", " + mib(info_.total_bytes) + "; GEMM: " + gemm_description() + ", " +
         precision_description() + "; attention: " + attention_description() + ")";
#endif
}

std::string CudaBackend::attention_description() const {
  if (attention_kernels_ == AttentionKernels::Reference) return "reference kernels (fp32)";
  return attention_rounds_bf16() ? "flash, bf16 on tensor cores" : "flash, fp32";
}

CudaDeviceInfo CudaBackend::refreshed_info() const {
  CudaDeviceInfo info = info_;
  size_t free_b = 0, total_b = 0;
  cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  info.free_bytes = free_b;
  info.total_bytes = total_b;
  return info;
}

void CudaBackend::check_status() {
  int st[4] = {0, 0, 0, 0};
  cuda::check(cudaMemcpy(st, status_, sizeof st, cudaMemcpyDeviceToHost), "reading the status word");
  if (st[0] == cuda::kStatusOk) return;
  cuda::check(cudaMemset(status_, 0, sizeof st), "clearing the status word");
  const std::string row = std::to_string(st[1]), value = std::to_string(st[2]);
  switch (st[0]) {
    case cuda::kStatusEmbeddingForwardId:
      throw Error("embedding_forward: token id " + value + " at row " + row + " is negative");
    case cuda::kStatusEmbeddingBackwardId:
      throw Error("embedding_backward: token id " + value + " at row " + row + " is negative");
    case cuda::kStatusRopeForwardPos:
      throw Error("rope_forward: position " + value + " at row " + row + " is negative");
    case cuda::kStatusRopeBackwardPos:
      throw Error("rope_backward: position " + value + " at row " + row + " is negative");
    case cuda::kStatusEmbeddingHalfId:
      throw Error("embedding_forward_half: token id " + value + " at row " + row + " is outside the table");
    case cuda::kStatusCrossEntropyTarget:
      throw Error("cross_entropy_rows: target " + value + " at row " + row +
                  " is outside the vocabulary (labels must be token ids or -100)");
    default:
      throw Error("CUDA backend: a kernel reported status " + std::to_string(st[0]));
  }
}

void CudaBackend::synchronize() {
  cuda::check(cudaDeviceSynchronize(), "synchronize (an earlier kernel failed)");
  check_status();
}

void* CudaBackend::alloc(size_t bytes) {
  if (bytes == 0) bytes = 64;
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);  // 256-byte aligned: more than the 64 promised
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // an allocation failure is not sticky: clear it
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw OutOfMemory("a buffer on " + info_.name + " (" + mib(free_b) + " free of " + mib(total_b) + ")",
                      bytes);
  }
  cuda::check(err, "cudaMalloc");
  return p;
}

void CudaBackend::release(void* p) {
  // Called from destructors: never throws. A failure here means an earlier
  // kernel failed, which the next synchronising call reports.
  if (p) cudaFree(p);
}

void CudaBackend::upload(void* dst, const void* host, size_t bytes) {
  if (bytes == 0) return;
  cuda::check(cudaMemcpy(dst, host, bytes, cudaMemcpyHostToDevice), "upload (cudaMemcpy host to device)");
}

void CudaBackend::download(void* host, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cuda::check(cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost), "download (cudaMemcpy device to host)");
  check_status();
}

void CudaBackend::fill(float* x, float value, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(fill_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(x, value, n);
  cuda::check_launch("fill");
}

void CudaBackend::copy(float* dst, const float* src, size_t n) {
  if (n == 0 || dst == src) return;
  cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, 0), "copy");
}

void* CudaBackend::scratch(Scratch slot, size_t bytes) {
  const int i = static_cast<int>(slot);
  if (bytes == 0) bytes = 64;
  if (scratch_bytes_[i] >= bytes) return scratch_[i];
  if (scratch_[i]) {
    // The old buffer may still be read by queued kernels: wait before freeing.
    cuda::check(cudaDeviceSynchronize(), "synchronize before growing a scratch buffer");
    cudaFree(scratch_[i]);
    scratch_[i] = nullptr;
    scratch_bytes_[i] = 0;
  }
  scratch_[i] = alloc(bytes);
  scratch_bytes_[i] = bytes;
  return scratch_[i];
}

}  // namespace ps
