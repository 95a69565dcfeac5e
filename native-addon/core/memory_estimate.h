// The memory formula shared by estimate_memory (inspect, the UI) and the
// engine's own allocations: both build the same PlanConfig and count the same
// tensors, so an estimate is what a run will hold, to the byte.
#pragma once

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

}  // namespace ps
