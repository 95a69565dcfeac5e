// LoRA (Hu et al. 2021) as Hugging Face PEFT defines it: on each targeted
// linear, y = W x + s * B A dropout(x), s = alpha / r (rsLoRA: alpha / sqrt(r)),
// A [r, in], B [out, r]; W stays frozen and B A is never formed.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "methods/trainable.h"
#include "model/dims.h"
#include "model/linear.h"
#include "model/tensor_names.h"

namespace ps {

// Which (layer, module) pairs a configuration adapts; validates names and layer indices.
struct LoraSelection {
  bool module[kNumModules] = {};
  std::vector<bool> layer;  // [L]
  LoraSelection(const ModelDims& d, const std::vector<std::string>& targets,
                const std::optional<std::vector<int>>& layers);
  bool adapted(int l, int m) const { return layer[l] && module[m]; }
  int64_t params(const ModelDims& d, int rank) const;  // r * (in + out) summed
  int64_t dora_params(const ModelDims& d) const;        // out summed: DoRA's magnitudes
  // DoRA's buffers besides its trainables: w_sq, inv_norm and factor per
  // adapted linear, plus one refresh scratch (methods/dora.h).
  int64_t dora_aux_floats(const ModelDims& d, int rank) const;
};

// in / out features of a module's linear.
int module_in_features(const ModelDims& d, int module);
int module_out_features(const ModelDims& d, int module);

class LoraAdapters {
 public:
  LoraAdapters(Backend& be, const ModelDims& d, const LoraOptions& options);  // allocates and initialises
  ~LoraAdapters();
  LoraAdapters(const LoraAdapters&) = delete;
  LoraAdapters& operator=(const LoraAdapters&) = delete;

  const LoraAdapter* get(int layer, int module) const;  // nullptr when not adapted
  // Rank of module m's adapters in any layer (0 when none): sizes the H buffers.
  int module_rank(int module) const { return selection_.module[module] && any_layer_ ? rank_ : 0; }
  bool dropout() const { return dropout_ > 0; }
  bool dora() const { return dora_; }
  // DoRA: before a pass, the weight norms from the current A, B and m (and
  // the base's row norms again when the weights changed: `generation`).
  // linear_of(l, m) is the bound linear of layer l, module m.
  using LinearOf = std::function<const Linear&(int layer, int module)>;
  void prepare_dora(const LinearOf& linear_of, uint64_t generation);
  // DoRA: m = ||W||_row, as PEFT initialises it (B = 0). After the weights are in place.
  void init_magnitudes(const LinearOf& linear_of, uint64_t generation);
  // A, B or m were written (an optimizer step, setTensor): norms are stale.
  void changed() { norms_fresh_ = false; }
  // A base weight was written (setWeight / setTensor): its row norms again too.
  void weights_changed() {
    w_sq_ready_ = false;
    norms_fresh_ = false;
  }
  uint64_t aux_bytes() const {
    return dora_ ? static_cast<uint64_t>(selection_.dora_aux_floats(d_, rank_)) * sizeof(float) : 0;
  }
  // A then B of each adapted module, layer by layer, module order q..down.
  const std::vector<TrainableTensor>& trainables() const { return trainables_; }
  int64_t params() const;

 private:
  Backend& be_;
  ModelDims d_;
  LoraSelection selection_;
  int rank_;
  float dropout_;
  bool dora_;
  bool any_layer_ = false;
  bool norms_fresh_ = false;
  uint64_t w_sq_generation_ = 0;
  bool w_sq_ready_ = false;
  std::vector<float*> w_sq_, inv_norm_, factor_;  // DoRA, per adapter (nullptr where not adapted)
  float* refresh_scratch_ = nullptr;
  void compute_w_sq(const LinearOf& linear_of, bool set_magnitudes);
  void release_all();
  std::vector<LoraAdapter> adapters_;  // [L * kNumModules], rank 0 where not adapted
  std::vector<TrainableTensor> trainables_;
};

// The fused branch, called by linear_forward / linear_backward.
void lora_branch_forward(Backend& be, const LoraAdapter& a, int rows, int in, int out,
                         const float* x, float* y, const LinearScratch& s);
void lora_branch_backward(Backend& be, const LoraAdapter& a, int rows, int in, int out,
                          const float* x, const float* dy, float* dx, const LinearScratch& s);

}  // namespace ps
