// The simulator's SIGSEGV/SIGBUS reporter. A fault inside a kernel is the
// simulator's out-of-bounds check (device buffers end at guard pages) or a
// fiber's stack overflow; the handler says which, names the kernel, the
// launch site, the block and the thread, then lets the default action end
// the process as the fault would have (a test observes it from a parent
// process). Faults outside kernels are passed to the previous handler.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "sim_internal.h"
#include "sim_kernel.h"

namespace ps {
namespace cudasim {

namespace {

struct sigaction g_old_segv, g_old_bus;

void restore_and_return(int sig) {
  sigaction(sig, sig == SIGSEGV ? &g_old_segv : &g_old_bus, nullptr);
  // Returning re-executes the faulting access under the previous action.
}

void on_fault(int sig, siginfo_t* info, void*) {
  if (!g_running.kernel) return restore_and_return(sig);
  const void* addr = info->si_addr;
  char what[320];
  char where[256];
  if (in_stack_guard(addr))
    std::snprintf(what, sizeof what, "stack overflow of a simulated thread (address %p; fiber stacks are 256 KiB)", addr);
  else if (describe_device_address(addr, where, sizeof where))
    std::snprintf(what, sizeof what, "%s: %s", std::strstr(where, "freed") ? "use after free" : "out-of-bounds access", where);
  else
    std::snprintf(what, sizeof what, "invalid %s at address %p, not inside any device buffer",
                  sig == SIGBUS ? "bus access" : "memory access", addr);
  char msg[768];
  const int n = std::snprintf(msg, sizeof msg,
                              "CUDA simulator: kernel %s (launched at %s), block (%u,%u,%u), thread (%u,%u,%u): %s\n",
                              g_running.kernel, g_running.site, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x,
                              threadIdx.y, threadIdx.z, what);
  if (n > 0) {
    ssize_t w = write(2, msg, static_cast<size_t>(n) < sizeof msg ? static_cast<size_t>(n) : sizeof msg - 1);
    (void)w;
  }
  restore_and_return(sig);
}

}  // namespace

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  });
  // A fiber that overflowed its stack cannot run the handler on it.
  static thread_local bool has_altstack = false;
  if (!has_altstack) {
    static thread_local char* mem = nullptr;
    const size_t size = 64 * 1024;
    mem = static_cast<char*>(std::malloc(size));
    stack_t ss;
    ss.ss_sp = mem;
    ss.ss_size = size;
    ss.ss_flags = 0;
    if (mem && sigaltstack(&ss, nullptr) == 0) has_altstack = true;
  }
}

}  // namespace cudasim
}  // namespace ps
