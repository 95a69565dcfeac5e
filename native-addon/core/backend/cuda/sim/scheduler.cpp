// Runs a grid: blocks one after another, the threads of a block as fibers
// that switch only at __syncthreads and warp collectives (see sim_kernel.h).
// The scheduler takes the block's warps in turn and runs each as far as it
// goes (resuming its runnable lanes in order until each blocks or exits); a
// barrier or collective completes when its last participant arrives, which
// makes the others runnable again. A pass over all warps that finds nothing
// runnable while threads remain is a deadlock.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fiber.h"
#include "sim_internal.h"
#include "sim_control.h"
#include "sim_launch.h"

// The linker's bounds of the static shared memory section. Weak: a program
// whose kernels declare no __shared__ array has no such section.
extern "C" char __start_ps_sim_shared[] __attribute__((weak));
extern "C" char __stop_ps_sim_shared[] __attribute__((weak));

uint3 threadIdx{0, 0, 0};
uint3 blockIdx{0, 0, 0};
dim3 blockDim{1, 1, 1};
dim3 gridDim{1, 1, 1};

namespace ps {
namespace cudasim {

RunningKernel g_running;

namespace {

enum class State { Runnable, AtBarrier, AtWarp, Exited };

struct Thread {
  FiberContext ctx;
  State state = State::Runnable;
  uint3 tid{0, 0, 0};
  int linear = 0;
  const char* site = nullptr;  // where it waits
  // warp collective request and result
  WarpOp op = WarpOp::SyncWarp;
  unsigned mask = 0;
  uint64_t in = 0, out = 0;
  int arg = 0, width = 32;
  int pred = 0;  // __syncthreads_count/_and/_or
  std::string error;
  bool failed = false;
};

// Per warp, which lanes wait at a collective and which have exited, so a
// collective's checks cost a few bit operations per lane, not a loop.
struct WarpState {
  unsigned waiting = 0, exited = 0;
};

struct Block {
  const LaunchConfig* cfg = nullptr;
  void (*thunk)(void*) = nullptr;
  void* ctx = nullptr;
  std::vector<Thread> threads;
  std::vector<WarpState> warps;
  int n = 0, exited = 0, at_barrier = 0;
  const char* barrier_site = nullptr;
  int reduce_result = 0;
  Thread* current = nullptr;
  FiberContext scheduler;
  char* dyn_shared = nullptr;
};

Block g;
StackPool g_stacks;
// PS_CUDA_SIM_THREAD_ORDER=reverse starts a process in reverse order (CTest
// runs the parity tests both ways); set_reverse_thread_order() switches.
bool initial_reverse() {
  const char* env = std::getenv("PS_CUDA_SIM_THREAD_ORDER");
  return env && std::strcmp(env, "reverse") == 0;
}
bool g_reverse = initial_reverse();
std::mutex g_launch_mutex;

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::ShflIdx: return "__shfl_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::All: return "__all_sync";
    case WarpOp::SyncWarp: return "__syncwarp";
  }
  return "?";
}

std::string hex(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

std::string idx(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

[[noreturn]] void fail(const std::string& what) { throw KernelError(what); }

// Back to the scheduler; returns when this thread is resumed.
void yield(Thread* t) { fiber_switch(&t->ctx, &g.scheduler); }

int warp_lanes(const Thread* t) {
  const int first = t->linear & ~31;
  return g.n - first < 32 ? g.n - first : 32;
}
Thread& lane_thread(const Thread* t, int lane) { return g.threads[(t->linear & ~31) + lane]; }

// A thread that ends while others still count on it is an error: at a
// __syncthreads (the whole block must reach it) or named in a collective's mask.
void check_exit(Thread* t) {
  if (g.at_barrier > 0)
    fail("this thread exited while " + std::to_string(g.at_barrier) + " thread(s) of its block wait at __syncthreads (" +
         g.barrier_site + "): every thread of a block must reach each __syncthreads");
  const int lane = t->linear & 31;
  const unsigned waiting = g.warps[t->linear >> 5].waiting;
  for (int j = 0; j < 32; ++j) {
    if (!((waiting >> j) & 1u)) continue;
    const Thread& o = lane_thread(t, j);
    if ((o.mask >> lane) & 1u)
      fail("this lane exited while lane " + std::to_string(j) + " waits at " + op_name(o.op) + " (" + o.site +
           ") with mask " + hex(o.mask) + ", which names it");
  }
}

void fiber_main(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  try {
    g.thunk(g.ctx);
    check_exit(t);
  } catch (const std::exception& e) {
    t->error = e.what();
    t->failed = true;
  } catch (...) {
    t->error = "an exception that is not a std::exception";
    t->failed = true;
  }
  t->state = State::Exited;
  g.warps[t->linear >> 5].exited |= 1u << (t->linear & 31);
  ++g.exited;
  fiber_switch(&t->ctx, &g.scheduler);
  std::abort();  // an exited fiber is never resumed
}

void validate(const LaunchConfig& c, std::string* why, cudaError_t* err) {
  const dim3 b = c.block, gr = c.grid;
  const unsigned long long threads = static_cast<unsigned long long>(b.x) * b.y * b.z;
  *err = cudaErrorInvalidConfiguration;
  if (b.x == 0 || b.y == 0 || b.z == 0) return void(*why = "a block dimension is 0");
  if (b.x > 1024 || b.y > 1024 || b.z > 64) return void(*why = "block dims beyond (1024, 1024, 64)");
  if (threads > 1024) return void(*why = "more than 1024 threads per block");
  if (gr.x == 0 || gr.y == 0 || gr.z == 0) return void(*why = "a grid dimension is 0");
  if (gr.x > 0x7fffffffu || gr.y > 65535 || gr.z > 65535) return void(*why = "grid dims beyond (2^31-1, 65535, 65535)");
  const size_t max_dyn = max_dynamic_shared(c.fn);
  if (c.shared_bytes > max_dyn) {
    *err = cudaErrorInvalidValue;
    return void(*why = std::to_string(c.shared_bytes) + " bytes of dynamic shared memory, over the " +
                       std::to_string(max_dyn) + " allowed (cudaFuncSetAttribute opts in to more)");
  }
  *err = cudaSuccess;
}

std::string where(const Thread& t) {
  return std::string("CUDA simulator: kernel ") + g.cfg->kernel + " (launched at " + g.cfg->site + "), block " +
         idx(blockIdx) + ", thread " + idx(t.tid) + ": ";
}

// Static shared memory is one section for all kernels' arrays (1.5 MB once
// every kernel is linked), and refilling all of it before every block came
// to most of the simulator's time. A kernel only ever touches its own
// arrays, so the first block of each launch refills the whole section and,
// when it ends, the bytes it changed give (widen) the kernel's footprint;
// every other block refills only that footprint. A byte of the kernel's
// arrays that no first block ever wrote is left as the last fill left it:
// by no block of this kernel, so still the fill unless the kernel wrote
// it in a later block (a read of it there would then see that value instead
// of NaN: the one case this gives up, for kernels whose first blocks skip
// an array the later ones write, or whose writes there equal the fill at
// the footprint's edges).
struct Footprint {
  size_t lo = SIZE_MAX, hi = 0;  // byte offsets into the section, [lo, hi)
};
std::unordered_map<const void*, Footprint> g_footprints;

char* static_shared_begin() { return __start_ps_sim_shared; }
size_t static_shared_size() { return static_cast<size_t>(__stop_ps_sim_shared - __start_ps_sim_shared); }

void fill_static_shared(bool whole) {
  const size_t size = static_shared_size();
  if (!size) return;
  if (whole) return void(std::memset(static_shared_begin(), 0xFF, size));
  const Footprint& f = g_footprints[g.cfg->fn];
  if (f.lo < f.hi) std::memset(static_shared_begin() + f.lo, 0xFF, f.hi - f.lo);
}

// After a launch's first block: widen the kernel's footprint by what it changed.
void record_footprint() {
  const size_t size = static_shared_size();
  const char* base = static_shared_begin();
  size_t lo = 0, hi = size;
  while (lo < size && static_cast<unsigned char>(base[lo]) == 0xFF) ++lo;
  while (hi > lo && static_cast<unsigned char>(base[hi - 1]) == 0xFF) --hi;
  if (lo >= hi) return;
  Footprint& f = g_footprints[g.cfg->fn];
  f.lo = std::min(f.lo, lo / 64 * 64);
  f.hi = std::max(f.hi, std::min(size, (hi + 63) / 64 * 64));
}

void run_block(bool first_of_launch) {
  for (int i = 0; i < g.n; ++i) {
    Thread& t = g.threads[i];
    t.state = State::Runnable;
    t.failed = false;
    t.error.clear();
    fiber_init(&t.ctx, g_stacks.stack(i), StackPool::kStackBytes, &fiber_main, &t);
  }
  for (WarpState& w : g.warps) w = WarpState{};
  g.exited = 0;
  g.at_barrier = 0;
  g.barrier_site = nullptr;
  // Shared memory starts uninitialised in every block: NaN / -1, not zeros
  // or what the previous block left (the static part is the section of
  // sim_kernel.h's __shared__, all kernels' arrays together: see Footprint).
  if (g.dyn_shared) std::memset(g.dyn_shared, 0xFF, g.cfg->shared_bytes);
  fill_static_shared(first_of_launch);
  // Warps run ahead of each other, as on the hardware: each warp in turn
  // goes as far as it can (its lanes in order, collectives among them
  // completing) before the next warp moves, so a warp reaches the next
  // __syncthreads, or re-writes shared memory after one, while the others
  // still wait behind the previous one.
  const int warps = (g.n + 31) / 32;
  while (g.exited < g.n) {
    bool ran = false;
    for (int wk = 0; wk < warps; ++wk) {
      const int w = g_reverse ? warps - 1 - wk : wk;
      const int first = 32 * w, lanes = g.n - first < 32 ? g.n - first : 32;
      for (bool progress = true; progress;) {
        progress = false;
        for (int l = 0; l < lanes; ++l) {
          Thread& t = g.threads[first + (g_reverse ? lanes - 1 - l : l)];
          if (t.state != State::Runnable) continue;
          progress = ran = true;
          threadIdx = t.tid;
          g.current = &t;
          fiber_switch(&g.scheduler, &t.ctx);
          g.current = nullptr;
          if (t.failed) {
            threadIdx = t.tid;
            throw KernelError(where(t) + t.error);
          }
        }
      }
    }
    if (!ran && g.exited < g.n) {
      // Describe who waits where: the first thread at each distinct place.
      std::string what = "deadlock: ";
      int shown = 0;
      std::vector<const char*> sites;
      for (int i = 0; i < g.n; ++i) {
        const Thread& t = g.threads[i];
        if (t.state == State::Exited || shown >= 4) continue;
        bool seen = false;
        for (const char* s : sites) seen = seen || s == t.site;
        if (seen) continue;
        sites.push_back(t.site);
        what += (shown++ ? "; thread " : "thread ") + idx(t.tid) +
                (t.state == State::AtBarrier ? " waits at __syncthreads (" + std::string(t.site) + ")"
                                             : std::string(" waits at ") + op_name(t.op) + " (" + t.site +
                                                   ") with mask " + hex(t.mask));
      }
      fail(std::string("CUDA simulator: kernel ") + g.cfg->kernel + " (launched at " + g.cfg->site + "), block " +
           idx(blockIdx) + ": " + what + " (" + std::to_string(g.exited) + " of " + std::to_string(g.n) +
           " threads exited)");
    }
  }
}

// Result of a completed collective for the lane `lane` of the warp whose
// participants are in mask.
uint64_t collective_result(const Thread* t, int lane) {
  const Thread& me = lane_thread(t, lane);
  const unsigned mask = me.mask;
  const int w = me.width;
  auto read = [&](int src) -> uint64_t {
    if (!((mask >> src) & 1u))
      fail(std::string(op_name(me.op)) + " (" + me.site + "): lane " + std::to_string(lane) + " reads lane " +
           std::to_string(src) + ", which is not in the mask " + hex(mask));
    return lane_thread(t, src).in;
  };
  const int seg = lane & ~(w - 1), pos = lane & (w - 1);
  switch (me.op) {
    case WarpOp::ShflIdx: return read(seg + (((me.arg % w) + w) % w));
    case WarpOp::ShflXor: {
      const int src = lane ^ me.arg;
      return (src & ~(w - 1)) == seg && src < 32 ? read(src) : me.in;
    }
    case WarpOp::ShflDown: return pos + me.arg < w ? read(lane + me.arg) : me.in;
    case WarpOp::ShflUp: return pos >= me.arg ? read(lane - me.arg) : me.in;
    case WarpOp::Ballot:
    case WarpOp::Any:
    case WarpOp::All: {
      unsigned bits = 0;
      for (int j = 0; j < 32; ++j)
        if (((mask >> j) & 1u) && lane_thread(t, j).in) bits |= 1u << j;
      if (me.op == WarpOp::Ballot) return bits;
      if (me.op == WarpOp::Any) return bits != 0;
      return bits == mask;
    }
    case WarpOp::SyncWarp: return 0;
  }
  return 0;
}

}  // namespace

void syncthreads(const char* site) { (void)syncthreads_reduce(0, 0, site); }

int syncthreads_reduce(int pred, int how, const char* site) {
  Thread* t = g.current;
  if (!t) fail(std::string("__syncthreads (") + site + ") called outside a kernel");
  if (g.at_barrier > 0 && g.barrier_site != site && std::strcmp(g.barrier_site, site) != 0)
    fail(std::string("this thread reaches __syncthreads at ") + site + " while " + std::to_string(g.at_barrier) +
         " thread(s) wait at a different one, at " + g.barrier_site + " (a barrier inside divergent code)");
  t->state = State::AtBarrier;
  t->site = site;
  t->pred = pred;
  g.barrier_site = site;
  if (++g.at_barrier == g.n - g.exited) {
    if (g.exited > 0)
      fail(std::string("__syncthreads (") + site + ") is reached by " + std::to_string(g.at_barrier) + " of the block's " +
           std::to_string(g.n) + " threads: " + std::to_string(g.exited) + " exited before it");
    int count = 0;
    for (int i = 0; i < g.n; ++i) {  // (the vector may be longer: it keeps the largest block's threads)
      count += g.threads[i].pred != 0;
      g.threads[i].state = State::Runnable;
    }
    g.reduce_result = how == 0 ? count : how == 1 ? (count == g.n) : (count > 0);
    g.at_barrier = 0;
    g.barrier_site = nullptr;
    return g.reduce_result;
  }
  yield(t);
  return g.reduce_result;
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, const char* site) {
  Thread* t = g.current;
  if (!t) fail(std::string(op_name(op)) + " (" + site + ") called outside a kernel");
  const int lane = t->linear & 31, lanes = warp_lanes(t);
  const unsigned bit = 1u << lane;
  WarpState& w = g.warps[t->linear >> 5];
  auto bad = [&](const std::string& what) {
    fail(std::string(op_name(op)) + " (" + site + ") with mask " + hex(mask) + ": " + what);
  };
  if (!(mask & bit)) bad("the calling lane " + std::to_string(lane) + " is not in the mask");
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    bad("width " + std::to_string(width) + " is not a power of 2 up to 32");
  if (lanes < 32 && (mask >> lanes) != 0)
    bad("the mask names lanes beyond this warp's " + std::to_string(lanes) + " threads (blockDim is not a multiple of 32)");
  if (mask & w.exited) bad("lane " + std::to_string(__builtin_ctz(mask & w.exited)) + " named in the mask has exited");
  // Every earlier arrival was checked against the lowest waiting lane of its
  // mask, so comparing with that one lane checks them all.
  if (const unsigned others = mask & w.waiting) {
    const int j = __builtin_ctz(others);
    const Thread& o = lane_thread(t, j);
    if (o.op != op || o.mask != mask)
      bad("lane " + std::to_string(j) + " waits at a different collective: " + op_name(o.op) + " (" + o.site +
          ") with mask " + hex(o.mask));
  }
  t->op = op;
  t->mask = mask;
  t->in = bits;
  t->arg = arg;
  t->width = width;
  t->site = site;
  if (((w.waiting | bit) & mask) != mask) {
    t->state = State::AtWarp;
    w.waiting |= bit;
    yield(t);  // the last lane to arrive completes the collective
    return t->out;
  }
  // Everyone is here: compute every participant's result, release them.
  for (int j = 0; j < lanes; ++j)
    if ((mask >> j) & 1u) lane_thread(t, j).out = collective_result(t, j);
  for (int j = 0; j < lanes; ++j)
    if ((mask >> j) & 1u) lane_thread(t, j).state = State::Runnable;
  w.waiting &= ~mask;
  return t->out;
}

unsigned active_mask() {
  Thread* t = g.current;
  if (!t) return 0;
  unsigned m = 0;
  for (int j = 0; j < warp_lanes(t); ++j)
    if (lane_thread(t, j).state != State::Exited) m |= 1u << j;
  return m;
}

void* dynamic_shared_base() { return g.dyn_shared; }

void set_reverse_thread_order(bool reverse) { g_reverse = reverse; }
bool reverse_thread_order() { return g_reverse; }

bool in_stack_guard(const void* addr) { return g_stacks.in_guard(addr); }

void check_pointer_argument(const LaunchConfig& cfg, int index, const void* p) {
  if (!p || is_device_pointer(p)) return;
  char what[320];
  if (!describe_pointer(p, what, sizeof what))
    std::snprintf(what, sizeof what, "the pointer %p is not device memory (a host pointer handed to a kernel faults on a GPU)", p);
  throw KernelError(std::string("CUDA simulator: kernel ") + cfg.kernel + " (launched at " + cfg.site + "): argument " +
                    std::to_string(index) + ": " + what);
}

bool run_kernel(const LaunchConfig& cfg, void (*thunk)(void*), void* ctx) {
  std::string why;
  cudaError_t err;
  validate(cfg, &why, &err);
  if (err != cudaSuccess) {
    if (std::getenv("PS_CUDA_SIM_VERBOSE"))
      std::fprintf(stderr, "CUDA simulator: launch of %s at %s refused: %s\n", cfg.kernel, cfg.site, why.c_str());
    set_last_error(err);
    return false;
  }
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  install_fault_handler();
  struct Reset {  // whatever happens, the next launch starts clean
    ~Reset() {
      g_running = RunningKernel{};
      g.current = nullptr;
      std::free(g.dyn_shared);
      g.dyn_shared = nullptr;
    }
  } reset;
  g.cfg = &cfg;
  g.thunk = thunk;
  g.ctx = ctx;
  g.n = static_cast<int>(cfg.block.x * cfg.block.y * cfg.block.z);
  if (static_cast<int>(g.threads.size()) < g.n) g.threads.resize(static_cast<size_t>(g.n));
  g.warps.assign(static_cast<size_t>((g.n + 31) / 32), WarpState{});
  for (int i = 0; i < g.n; ++i) {
    Thread& t = g.threads[i];
    t.linear = i;
    t.tid = uint3{i % cfg.block.x, (i / cfg.block.x) % cfg.block.y, i / (cfg.block.x * cfg.block.y)};
  }
  // The threads vector must not grow while fibers point into it.
  g.dyn_shared = cfg.shared_bytes ? static_cast<char*>(std::aligned_alloc(256, (cfg.shared_bytes + 255) / 256 * 256)) : nullptr;
  blockDim = cfg.block;
  gridDim = cfg.grid;
  g_running = RunningKernel{cfg.kernel, cfg.site};
  // Blocks run one after another; in reverse order too when the threads do,
  // so two blocks writing the same element also show up as a difference.
  const unsigned long long blocks = static_cast<unsigned long long>(cfg.grid.x) * cfg.grid.y * cfg.grid.z;
  for (unsigned long long k = 0; k < blocks; ++k) {
    const unsigned long long b = g_reverse ? blocks - 1 - k : k;
    blockIdx = uint3{static_cast<unsigned>(b % cfg.grid.x), static_cast<unsigned>((b / cfg.grid.x) % cfg.grid.y),
                     static_cast<unsigned>(b / (static_cast<unsigned long long>(cfg.grid.x) * cfg.grid.y))};
    run_block(k == 0);
    if (k == 0) record_footprint();
  }
  const std::string overrun = check_padding();
  if (!overrun.empty())
    throw KernelError(std::string("CUDA simulator: kernel ") + cfg.kernel + " (launched at " + cfg.site + ") " + overrun);
  return true;
}

}  // namespace cudasim
}  // namespace ps
