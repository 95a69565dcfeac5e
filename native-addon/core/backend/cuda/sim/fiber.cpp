// Fiber contexts and stacks (fiber.h).
#include "fiber.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#if !defined(__x86_64__) || defined(PS_CUDA_SIM_UCONTEXT)
#include <ucontext.h>
#endif

namespace ps {
namespace cudasim {

// PS_CUDA_SIM_UCONTEXT forces the portable path (to test it on x86-64).
#if defined(__x86_64__) && !defined(PS_CUDA_SIM_UCONTEXT)
// System V x86-64: rbx, rbp, r12-r15, the MXCSR and the x87 control word are
// callee-saved; everything else is the caller's. A new fiber's stack is laid
// out as if it had been switched away from: the first switch "returns" into
// the trampoline, which calls entry(arg) (held in r13 / r12) with the stack
// 16-byte aligned.
extern "C" void ps_sim_fiber_switch(void** save_sp, void* new_sp);
extern "C" void ps_sim_fiber_trampoline();
asm(R"(
  .text
  .globl ps_sim_fiber_switch
  .hidden ps_sim_fiber_switch
  .type ps_sim_fiber_switch,@function
ps_sim_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ps_sim_fiber_switch,.-ps_sim_fiber_switch

  .globl ps_sim_fiber_trampoline
  .hidden ps_sim_fiber_trampoline
  .type ps_sim_fiber_trampoline,@function
ps_sim_fiber_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size ps_sim_fiber_trampoline,.-ps_sim_fiber_trampoline
)");

void fiber_init(FiberContext* ctx, char* stack, size_t size, void (*entry)(void*), void* arg) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top - 64);
  // The new fiber starts with the creating thread's rounding and exception masks.
  uint32_t mxcsr = 0x1F80u;
  uint16_t fpcw = 0x037Fu;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  sp[0] = static_cast<uint64_t>(mxcsr) | (static_cast<uint64_t>(fpcw) << 32);
  sp[1] = 0;                                       // r15
  sp[2] = 0;                                       // r14
  sp[3] = reinterpret_cast<uint64_t>(entry);       // r13
  sp[4] = reinterpret_cast<uint64_t>(arg);         // r12
  sp[5] = 0;                                       // rbx
  sp[6] = 0;                                       // rbp
  sp[7] = reinterpret_cast<uint64_t>(&ps_sim_fiber_trampoline);  // return address
  ctx->sp = sp;
}

void fiber_switch(FiberContext* from, FiberContext* to) { ps_sim_fiber_switch(&from->sp, to->sp); }

#else
// Portable fallback: ucontext (slower: a signal-mask system call per switch).
namespace {
struct Start {
  void (*entry)(void*);
  void* arg;
};
void start_fiber(unsigned lo, unsigned hi) {
  const uintptr_t p = (static_cast<uintptr_t>(hi) << 32) | lo;
  Start* s = reinterpret_cast<Start*>(p);
  s->entry(s->arg);
}
}  // namespace

void fiber_init(FiberContext* ctx, char* stack, size_t size, void (*entry)(void*), void* arg) {
  if (!ctx->uc) ctx->uc = new ucontext_t();
  ucontext_t* uc = static_cast<ucontext_t*>(ctx->uc);
  getcontext(uc);
  // The Start record lives at the top of the fiber's own stack.
  Start* s = reinterpret_cast<Start*>(stack + size - 64);
  s->entry = entry;
  s->arg = arg;
  uc->uc_stack.ss_sp = stack;
  uc->uc_stack.ss_size = size - 64;
  uc->uc_link = nullptr;
  const uintptr_t p = reinterpret_cast<uintptr_t>(s);
  makecontext(uc, reinterpret_cast<void (*)()>(&start_fiber), 2, static_cast<unsigned>(p & 0xffffffffu),
              static_cast<unsigned>(p >> 32));
}

void fiber_switch(FiberContext* from, FiberContext* to) {
  if (!from->uc) from->uc = new ucontext_t();
  swapcontext(static_cast<ucontext_t*>(from->uc), static_cast<ucontext_t*>(to->uc));
}
#endif

char* StackPool::stack(int i) {
  if (i < 0 || i >= kMax) std::abort();
  while (count_ <= i) {
    const size_t guard = kGuardBytes;
    void* p = mmap(nullptr, guard + kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, guard, PROT_NONE);
    base_[count_++] = static_cast<char*>(p);
  }
  return base_[i] + kGuardBytes;
}

bool StackPool::in_guard(const void* addr) const {
  const char* a = static_cast<const char*>(addr);
  for (int i = 0; i < count_; ++i)
    if (a >= base_[i] && a < base_[i] + kGuardBytes) return true;
  return false;
}

}  // namespace cudasim
}  // namespace ps
