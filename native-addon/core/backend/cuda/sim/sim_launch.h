// Kernel launches in the simulator: PS_LAUNCH(kernel, grid, block, shared,
// stream)(args...) (cuda_common.cuh's spelling of <<<>>>) becomes a Launch
// object whose call converts the arguments to the kernel's parameter types
// once, as the runtime copies them into the parameter buffer, and runs the
// grid (scheduler.cpp). Each simulated thread gets its own copy of the
// parameters, as on the device.
//
// Like the hardware, run_kernel() first validates the configuration: a bad
// one (block over 1024 threads or its dims, grid dims out of range, dynamic
// shared memory over 48 KiB without cudaFuncSetAttribute) runs nothing and
// leaves the error for cudaGetLastError. A pointer argument that is neither
// null nor device memory (a host pointer handed to a kernel) throws a
// KernelError naming the kernel and the argument.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sim_kernel.h"
#include "sim_runtime.h"
#include "sim_types.h"

namespace ps {
namespace cudasim {

struct LaunchConfig {
  const char* kernel;  // as written in PS_LAUNCH
  const char* site;    // file:line of the launch
  const void* fn;      // identity (for the shared-memory opt-in)
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
};

// Runs thunk(ctx) once per simulated thread of every block. Returns false
// (and records the launch error) when the configuration is invalid.
bool run_kernel(const LaunchConfig& cfg, void (*thunk)(void*), void* ctx);
// Throws KernelError when p is neither null nor memory a kernel may touch.
void check_pointer_argument(const LaunchConfig& cfg, int index, const void* p);

template <typename... P>
class Launch {
 public:
  using Fn = void (*)(P...);
  Launch(Fn fn, const LaunchConfig& cfg) : fn_(fn), cfg_(cfg) {}

  template <typename... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "PS_LAUNCH: wrong number of kernel arguments");
    Body body{fn_, Params(std::forward<A>(args)...)};
    check_pointers(body.params, std::index_sequence_for<P...>{});
    run_kernel(cfg_, &Launch::thunk, &body);
  }

 private:
  using Params = std::tuple<std::decay_t<P>...>;
  struct Body {
    Fn fn;
    Params params;
  };
  static void thunk(void* ctx) {
    Body* b = static_cast<Body*>(ctx);
    std::apply(b->fn, b->params);  // by-value parameters: a copy per thread
  }
  template <size_t... I>
  void check_pointers(const Params& p, std::index_sequence<I...>) const {
    (check_one(static_cast<int>(I), std::get<I>(p)), ...);
  }
  template <typename T>
  void check_one(int index, const T& v) const {
    if constexpr (std::is_pointer<T>::value) check_pointer_argument(cfg_, index, static_cast<const void*>(v));
  }

  Fn fn_;
  LaunchConfig cfg_;
};

template <typename... P>
Launch<P...> make_launch(void (*fn)(P...), const char* name, const char* site, dim3 grid, dim3 block,
                         size_t shared_bytes, cudaStream_t stream) {
  return Launch<P...>(fn, LaunchConfig{name, site, reinterpret_cast<const void*>(fn), grid, block, shared_bytes, stream});
}

}  // namespace cudasim
}  // namespace ps

#define PS_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::ps::cudasim::make_launch(kernel, #kernel, PS_SIM_SITE, (grid), (block), (shared_bytes), (stream))
#define PS_DYNAMIC_SHARED(type, name) type* name = ::ps::cudasim::dynamic_shared<type>()
