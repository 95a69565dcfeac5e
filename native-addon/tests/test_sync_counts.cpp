// Host round trips per training step on a device backend. On a GPU every
// download, and every op that hands a value back to the host, waits until
// the device's queue has drained; a training step that did that once per
// trainable tensor (the gradient norm) or once per loss chunk would spend
// its time waiting. tests/device_sim_backend.h counts them; this test runs
// each engine scenario (LoRA, QLoRA, prefix and prompt tuning, full
// fine-tuning) on it and asserts:
//  - forward_backward: at most 1 round trip (the loss), however many loss
//    chunks the batch needs (a second run uses several);
//  - optimizer_step: at most 1 (the gradient norm), however many trainable
//    tensors there are (LoRA on every module has dozens);
//  - evaluate: at most 1.
// The printed counts are the measurement reported for issue 7.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "check.h"
#include "device_sim_backend.h"
#include "engine_scenarios.h"

namespace fs = std::filesystem;
using namespace tiny;

namespace {

constexpr size_t kMaxPerPass = 1;  // one download per forward_backward / optimizer_step / evaluate

size_t trainable_count(const ps::Engine& e) {
  size_t n = 0;
  for (const auto& p : e.parameters()) n += p.trainable ? 1 : 0;
  return n;
}

void measure(const scenarios::Scenario& sc) {
  auto owned = std::make_unique<devsim::DeviceSimBackend>(scenarios::kThreads);
  const devsim::DeviceSimBackend& sim = *owned;
  ps::Engine engine(sc.spec, sc.options, std::move(owned));
  engine.load_weights(sc.refs);
  sc.setup(engine);
  const int V = sc.spec.vocab_size;
  const size_t tensors = trainable_count(engine);
  CHECK(tensors >= 1);

  // A small batch (one loss chunk) and a large one: at least 16 rows of
  // logits per chunk and at most 256 for this vocabulary
  // (activations.cpp loss_chunk_rows), so 8 x 48 rows need two chunks.
  const ps::Batch small = sc.packed ? ragged_batch(8, V, 100) : random_batch(2, 8, V, 100);
  const ps::Batch large = random_batch(8, 48, V, 101);
  engine.reserve_activations(8, 48);
  size_t worst_fb = 0, worst_opt = 0, uploads = 0;
  for (const ps::Batch* b : {&small, &large, &small}) {
    const size_t t0 = sim.round_trips().total(), u0 = sim.round_trips().uploads;
    const ps::LossResult l = engine.forward_backward(*b, 1.0f / static_cast<float>(counted_tokens(*b)));
    const size_t t1 = sim.round_trips().total();
    const double norm = engine.optimizer_step(sc.step);
    const size_t t2 = sim.round_trips().total();
    // Prompt tuning also counts the first real token of each row (predicted
    // from the last virtual token), so the engine may count more.
    if (!(l.tokens >= counted_tokens(*b) && l.loss_sum > 0 && norm > 0))
      pstest::fail(__FILE__, __LINE__,
                   sc.name + ": tokens " + std::to_string(l.tokens) + " (batch counts " +
                       std::to_string(counted_tokens(*b)) + "), loss " + std::to_string(l.loss_sum) + ", norm " +
                       std::to_string(norm));
    worst_fb = std::max(worst_fb, t1 - t0);
    worst_opt = std::max(worst_opt, t2 - t1);
    uploads = std::max(uploads, sim.round_trips().uploads - u0);
  }
  const size_t e0 = sim.round_trips().total();
  const ps::LossResult ev = engine.evaluate(large);
  const size_t eval_trips = sim.round_trips().total() - e0;
  CHECK(ev.tokens >= counted_tokens(large) && ev.loss_sum > 0);
  std::printf("%-45s %3zu trainable tensors: round trips per forward_backward %zu, per optimizer_step %zu, "
              "per evaluate %zu (uploads per step %zu)\n",
              sc.name.c_str(), tensors, worst_fb, worst_opt, eval_trips, uploads);
  if (worst_fb > kMaxPerPass || worst_opt > kMaxPerPass || eval_trips > kMaxPerPass)
    pstest::fail(__FILE__, __LINE__, sc.name + ": more than one host round trip in a pass");
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() /
                       ("ps_syncs_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  try {
    for (const scenarios::Scenario& sc : scenarios::all(dir)) measure(sc);
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  fs::remove_all(dir);
  return pstest::finish("test_sync_counts");
}
