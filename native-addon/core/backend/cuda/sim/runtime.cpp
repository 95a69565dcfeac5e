// The simulator's host API (sim_runtime.h): one device, synchronous
// operations, the real runtime's error codes and strings.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "sim_internal.h"
#include "sim_runtime.h"

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded;
};

namespace ps {
namespace cudasim {

namespace {
constexpr int kRuntimeVersion = 13000;  // CUDA 13.0, as cudaRuntimeGetVersion reports it

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
// The presented machine (sim_control.h); the environment sets where a process starts.
struct Machine {
  int major = 9, minor = 0;
  int driver = env_int("PS_CUDA_SIM_DRIVER_VERSION", kRuntimeVersion);
  int code_arch = 90;
  Machine() {
    const char* cc = std::getenv("PS_CUDA_SIM_COMPUTE_CAPABILITY");
    if (cc && std::sscanf(cc, "%d.%d", &major, &minor) != 2) major = 9, minor = 0;
  }
};
Machine& machine() {
  static Machine m;
  return m;
}
bool driver_ok() { return machine().driver >= kRuntimeVersion; }

thread_local cudaError_t g_last = cudaSuccess;
thread_local int g_device = 0;
std::mutex g_handles_mutex;
std::set<const void*> g_handles;  // live streams and events

bool live(const void* h) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  return g_handles.count(h) != 0;
}
void add_handle(const void* h) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  g_handles.insert(h);
}
bool remove_handle(const void* h) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  return g_handles.erase(h) != 0;
}
bool stream_ok(cudaStream_t s) { return s == nullptr || live(s); }

// A device range [p, p + n) must lie inside one allocation.
bool device_range(const void* p, size_t n) { return find_allocation(p, n) != nullptr; }
}  // namespace

cudaError_t set_last_error(cudaError_t err) {
  if (err != cudaSuccess) g_last = err;
  return err;
}

void set_compute_capability(int major, int minor) { machine().major = major, machine().minor = minor; }
void set_driver_version(int version) { machine().driver = version; }
void set_code_arch(int arch) { machine().code_arch = arch; }
int code_arch() { return machine().code_arch; }

}  // namespace cudasim
}  // namespace ps

using ps::cudasim::set_last_error;

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return set_last_error(cudaErrorInvalidValue);
  *count = 0;
  if (!ps::cudasim::driver_ok()) return set_last_error(cudaErrorInsufficientDriver);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (!ps::cudasim::driver_ok()) return set_last_error(cudaErrorInsufficientDriver);
  if (device != 0) return set_last_error(cudaErrorInvalidDevice);
  ps::cudasim::g_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return set_last_error(cudaErrorInvalidValue);
  *device = ps::cudasim::g_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return set_last_error(cudaErrorInvalidValue);
  if (!ps::cudasim::driver_ok()) return set_last_error(cudaErrorInsufficientDriver);
  if (device != 0) return set_last_error(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "PEFT Studio CUDA simulator (CPU)");
  prop->totalGlobalMem = ps::cudasim::memory_limit();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024, prop->maxThreadsDim[1] = 1024, prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff, prop->maxGridSize[1] = 65535, prop->maxGridSize[2] = 65535;
  prop->major = ps::cudasim::machine().major;  // the limits above are sm_90's whatever it says
  prop->minor = ps::cudasim::machine().minor;
  prop->multiProcessorCount = 1;
  prop->l2CacheSize = 0;
  prop->totalConstMem = 64 * 1024;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return set_last_error(cudaErrorInvalidValue);
  if (device != 0) return set_last_error(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 1; break;
    case cudaDevAttrComputeCapabilityMajor: *value = ps::cudasim::machine().major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = ps::cudasim::machine().minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; break;
    default: return set_last_error(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

// Kernels run to completion inside their launch, errors are reported there.
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceReset() { return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int* v) {
  return v ? (*v = ps::cudasim::machine().driver, cudaSuccess) : set_last_error(cudaErrorInvalidValue);
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  return v ? (*v = ps::cudasim::kRuntimeVersion, cudaSuccess) : set_last_error(cudaErrorInvalidValue);
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = ps::cudasim::g_last;
  ps::cudasim::g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return ps::cudasim::g_last; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return set_last_error(cudaErrorInvalidValue);
  *ptr = ps::cudasim::device_alloc(bytes);
  return *ptr ? cudaSuccess : set_last_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  return ps::cudasim::device_free(ptr) ? cudaSuccess : set_last_error(cudaErrorInvalidValue);
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return set_last_error(cudaErrorInvalidValue);
  *total_bytes = ps::cudasim::memory_limit();
  *free_bytes = *total_bytes - ps::cudasim::memory_used();
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  if (!ptr) return set_last_error(cudaErrorInvalidValue);
  *ptr = ps::cudasim::host_alloc(bytes);
  return *ptr ? cudaSuccess : set_last_error(cudaErrorMemoryAllocation);
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int) { return cudaMallocHost(ptr, bytes); }
cudaError_t cudaFreeHost(void* ptr) {
  if (!ptr) return cudaSuccess;
  return ps::cudasim::host_free(ptr) ? cudaSuccess : set_last_error(cudaErrorInvalidValue);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  using ps::cudasim::device_range;
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return set_last_error(cudaErrorInvalidValue);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToHost: break;
    case cudaMemcpyHostToDevice: ok = device_range(dst, bytes); break;
    case cudaMemcpyDeviceToHost: ok = device_range(src, bytes); break;
    case cudaMemcpyDeviceToDevice: ok = device_range(dst, bytes) && device_range(src, bytes); break;
    case cudaMemcpyDefault: {
      // Unified addressing: each side may be either; a device side must fit its buffer.
      const bool d_dev = ps::cudasim::is_device_pointer(dst), s_dev = ps::cudasim::is_device_pointer(src);
      ok = (!d_dev || device_range(dst, bytes)) && (!s_dev || device_range(src, bytes));
      break;
    }
    default: return set_last_error(cudaErrorInvalidMemcpyDirection);
  }
  if (!ok) return set_last_error(cudaErrorInvalidValue);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (!ps::cudasim::stream_ok(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return set_last_error(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r) {
    const cudaError_t e = cudaMemcpy(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                                     width, kind);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!ps::cudasim::device_range(ptr, bytes)) return set_last_error(cudaErrorInvalidValue);
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (!ps::cudasim::stream_ok(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  return cudaMemset(ptr, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (!stream) return set_last_error(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  ps::cudasim::add_handle(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream || !ps::cudasim::remove_handle(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return ps::cudasim::stream_ok(stream) ? cudaSuccess : set_last_error(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  if (!event) return set_last_error(cudaErrorInvalidValue);
  *event = new CUevent_st{std::chrono::steady_clock::now(), false};
  ps::cudasim::add_handle(*event);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event || !ps::cudasim::remove_handle(event)) return set_last_error(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event || !ps::cudasim::live(event) || !ps::cudasim::stream_ok(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event && ps::cudasim::live(event) ? cudaSuccess : set_last_error(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return set_last_error(cudaErrorInvalidValue);
  if (!start || !end || !ps::cudasim::live(start) || !ps::cudasim::live(end))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return set_last_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (!ps::cudasim::stream_ok(stream) || !event || !ps::cudasim::live(event))
    return set_last_error(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}
