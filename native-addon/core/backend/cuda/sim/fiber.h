// Fibers for the simulator's threads: a context switch that saves only what
// the C++ ABI says survives a call (so switching is a few nanoseconds on
// x86-64, where a warp shuffle costs 32 of them), and pooled stacks, each
// with a PROT_NONE guard region below it so a stack overflow faults (the fault
// handler reports it) instead of corrupting a neighbour.
#pragma once

#include <cstddef>

namespace ps {
namespace cudasim {

struct FiberContext {
  void* sp = nullptr;  // x86-64: the saved stack pointer
  void* uc = nullptr;  // other architectures: a ucontext_t
};

// Prepares ctx to run entry(arg) on [stack, stack + size) at the first switch.
// entry must never return: it ends by switching away for good.
void fiber_init(FiberContext* ctx, char* stack, size_t size, void (*entry)(void*), void* arg);
// Saves the current context in from and resumes to.
void fiber_switch(FiberContext* from, FiberContext* to);

// Stacks for up to 1024 threads, created on first need and kept.
class StackPool {
 public:
  static constexpr size_t kStackBytes = 256 * 1024;
  // Address space only. Larger than one page: a frame of several KiB (the
  // compiler may inline a recursion a few levels deep) jumps over one page
  // and would land in whatever mapping lies below.
  static constexpr size_t kGuardBytes = 64 * 1024;
  char* stack(int i);  // the lowest usable byte of stack i
  // True when addr is in the guard page of one of the stacks.
  bool in_guard(const void* addr) const;

 private:
  static constexpr int kMax = 1024;
  char* base_[kMax] = {};  // guard page, then the stack
  int count_ = 0;
};

}  // namespace cudasim
}  // namespace ps
