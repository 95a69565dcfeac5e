// The memory formula shared by estimate_memory (inspect, the UI) and the
// engine's own allocations: both build the same PlanConfig and count the same
// tensors, so an estimate is what a run will hold, to the byte.
#pragma once

#include <string>

#include "backend/cpu/scratch_bounds.h"
#include "engine.h"
#include "model/activations.h"
#include "model/dims.h"

namespace ps {

// The activation plan of a method; lora_ranks[m] is the adapter rank of
// module m (0: not adapted). train = false (or a frozen model) gives the
// evaluation plan, which keeps nothing for backward.
// Prefix tuning's part of a plan (Method::Prefix only): the prefix length,
// the most batch rows a step may have (each row's keys get the prefix), and
// prefix_projection's encoder_hidden_size (0: no projection).
struct PrefixPlan {
  int tokens = 0;
  int batch = 0;
  int hidden = 0;
};
PlanConfig make_plan_config(const ModelDims& d, Method method, bool train, int rows, bool checkpoint,
                            const int lora_ranks[kNumModules], bool lora_dropout,
                            const PrefixPlan& prefix = PrefixPlan());

// The memory a run holds beyond the engine's own tensors (estimate_memory
// counts those to the byte): what the backend takes for itself.
// On the CPU, `cpu`: the threads' scratch (backend/cpu/scratch_bounds.h), an
// upper bound of what the CPU backend's Workspaces hold; the CUDA parts are 0.
// On a CUDA device the parts below, each an upper bound of what backend/cuda
// allocates for the configuration of `o` (`cpu` is 0: host RAM is not the budget there):
//   context_bytes      the CUDA context (runtime, module code, local memory
//                      reservations): a documented conservative allowance,
//                      kCudaContextBytes (tests/cuda/test_cuda_context_memory.cpp measures it on a GPU)
//   workspace_bytes    cuBLASLt's workspace (cublaslt::Gemm::kWorkspaceBytes),
//                      counted whether or not cuBLASLt loads (auto uses it when it does)
//   weight_chunk_bytes the widened chunk of an NF4 / 16-bit weight
//                      (weight_gemm.cu: CudaBackend::kWeightChunkValues, a
//                      multiple of 64 rows), the largest such weight's chunk
//   bf16_copy_bytes    under bf16 ("bf16", or "auto": counted as bf16, the
//                      larger) the two rounded operand copies of cuBLASLt's
//                      bf16 GEMM (gemm_precision.cu, at most kBf16CopyValues
//                      each): 2 x the largest operand a product reads, rows
//                      padded to 8 values, capped at that bound
//   lora_partials_bytes under LoRA, the fused kernels' partial sums (the
//                      reduction slot at its largest: lora_fused_plan.h)
// Not counted (under 2 MiB at training sizes): the Attention / Loss scratch
// slots and the reduction slot's other users.
struct DeviceMemoryEstimate {
  uint64_t context_bytes = 0;
  uint64_t workspace_bytes = 0;
  uint64_t weight_chunk_bytes = 0;
  uint64_t bf16_copy_bytes = 0;
  uint64_t lora_partials_bytes = 0;
  CpuScratchEstimate cpu;
  // Host RAM, not part of total() (not the device's memory): on a CUDA
  // device, the most the weights' load holds in host memory at once
  // (model/weights.cpp WeightStore::load): quantizing, the fp32 copy of the
  // largest block linear and its 4-bit codes before they are uploaded (with
  // double quantization also its fp32 absmax while quantizing; a
  // bitsandbytes checkpoint's one weight at a time is less); a 16-bit file,
  // the stage its largest fp32-held tensor (a norm, a bias) is widened through
  // (at most kWeightStageValues). 0 on the CPU (its load is within the run's
  // peak, which the estimate counts).
  uint64_t host_load_bytes = 0;
  uint64_t total() const {
    return context_bytes + workspace_bytes + weight_chunk_bytes + bf16_copy_bytes + lora_partials_bytes + cpu.total();
  }
};

// The CUDA context allowance and gemm_precision.cu's copy bound, in one place for the estimate.
constexpr uint64_t kCudaContextBytes = uint64_t(512) << 20;
constexpr uint64_t kBf16CopyValuesBound = uint64_t(32) << 20;  // == gemm_precision.cu kBf16CopyValues

// device: "cpu" (or "": all zero), "cuda", "cuda:N"; precision: "fp32", "bf16", "auto".
// Throws ps::Error for another device or precision, and for options estimate_memory refuses.
DeviceMemoryEstimate estimate_device_memory(const ModelSpec& spec, const MemoryEstimateOptions& options,
                                            const std::string& device, const std::string& precision);

}  // namespace ps
