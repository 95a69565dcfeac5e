// What the simulator's own .cpp files share (not part of the CUDA surface).
#pragma once

#include <cstddef>
#include <string>

namespace ps {
namespace cudasim {

// The kernel being run (nullptr between launches), for the fault handler.
struct RunningKernel {
  const char* kernel = nullptr;
  const char* site = nullptr;
};
extern RunningKernel g_running;

// fault.cpp: installs the SIGSEGV/SIGBUS reporter (once per process) and an
// alternate signal stack for the calling thread (so a fiber's stack overflow
// can still be reported).
void install_fault_handler();
// fiber stacks: true when addr is in a fiber stack's guard page.
bool in_stack_guard(const void* addr);
// memory.cpp: writes a description of addr relative to the device buffers
// ("N bytes past the end of a B-byte device buffer at 0x...") into buf;
// false when addr is not near any of them.
bool describe_device_address(const void* addr, char* buf, size_t n);
// The same, under the allocation lock (not for the fault handler).
bool describe_pointer(const void* p, char* buf, size_t n);
// memory.cpp: after a kernel, "" or what was written into the padding
// after the end of a buffer (the 0xFF fill up to the 256-byte granule).
std::string check_padding();

}  // namespace cudasim
}  // namespace ps

namespace ps {
namespace cudasim {
// memory.cpp: cudaMallocHost memory (kernels may use it; no limit, no guard).
void* host_alloc(size_t bytes);
bool host_free(void* p);
}  // namespace cudasim
}  // namespace ps
