// The memory estimate's CPU scratch (backend/cpu/scratch_bounds.h) against
// what the CPU backend's Workspaces really held: for each method, base
// precision and thread count, a run of training steps and an evaluation on a
// model large enough that every GEMM splits into several row, column and
// k-blocks, and the attention into several key blocks. The estimate is a bound
// over every product the model runs; in these runs the products that size
// each buffer all occur, so it must equal, to the byte, the most the
// Workspaces' tally (workspace.h) held at once. One part depends on timing:
// a 4-bit / 16-bit GEMM's op(B) slice grows on each pool thread that takes one
// of its column tasks, and on a busy machine a thread may take none of the
// largest product's; there the tally may stay below the estimate by at most
// that part.
//
// Each run is on its own thread, as the binding runs an engine
// (binding/engine_thread.h): its thread_local buffers end with it, so every
// run starts from an empty tally; that the tally returns to zero is checked
// too (a run that leaked scratch past its engine would hold memory nothing
// counts).
#include <cstdio>
#include <thread>

#include "backend/cpu/workspace.h"
#include "check.h"
#include "memory_estimate.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

// Wide enough that a step's products have several 528-row, 512-column and
// 256-deep blocks (rows 3 x 200 = 600; F = 1100) and the attention several
// 64-key blocks; small enough for a few steps in a second.
ps::ModelSpec mid_spec() {
  ps::ModelSpec s = spec(Variant::Llama);
  s.vocab_size = 3000;
  s.hidden_size = 384;
  s.intermediate_size = 1100;
  s.num_layers = 2;
  s.num_heads = 6;
  s.num_kv_heads = 2;
  s.head_dim = 64;
  s.max_position_embeddings = 512;
  return s;
}

// QLoRA's base: NF4, blocks of 64, double quantization.
ps::QuantizationOptions nf4() {
  ps::QuantizationOptions q;
  q.type = ps::QuantizationOptions::Type::Nf4;
  q.blocksize = 64;
  q.double_quant = true;
  return q;
}

struct Run {
  const char* name;
  ps::Method method;
  bool nf4 = false;
  int threads = 1;
  int batch = 3, seq = 200;
  bool checkpoint = false;
  bool dora = false;
};

// What the Workspaces held at most during the run, from an empty tally.
uint64_t held_by(const Run& r, const ps::ModelSpec& s) {
  uint64_t peak = 0;
  std::thread([&] {
    ps::EngineOptions eo;
    eo.threads = r.threads;
    eo.gradient_checkpointing = r.checkpoint;
    if (r.nf4) eo.quantization = nf4();
    ps::Engine e(s, eo);
    set_all(e, random_weights(s, 1));
    switch (r.method) {
      case ps::Method::Lora: {
        ps::LoraOptions lo = all_targets_lora(8, 16.0f, 0.1f, 2);
        lo.dora = r.dora;
        e.setup_lora(lo);
        randomize_lora_b(e, 0.2, 3);
        break;
      }
      case ps::Method::Full: e.setup_full(); break;
      case ps::Method::Prompt: {
        ps::PromptTuningOptions o;
        o.num_virtual_tokens = 20;
        o.init.assign(static_cast<size_t>(20) * s.hidden_size, 0.1f);
        e.setup_prompt_tuning(o);
        break;
      }
      case ps::Method::Prefix: {
        ps::PrefixTuningOptions o;
        o.num_virtual_tokens = 16;
        o.projection = true;
        o.encoder_hidden_size = 200;
        o.seed = 4;
        e.setup_prefix_tuning(o);
        break;
      }
      case ps::Method::Frozen: break;
    }
    ps::OptimizerStep step;
    for (uint64_t i = 0; i < 2; ++i) {
      e.forward_backward(random_batch(r.batch, r.seq, s.vocab_size, 10 + i), 0.5f);
      e.optimizer_step(step);
    }
    e.evaluate(random_batch(r.batch, r.seq, s.vocab_size, 20));
    peak = e.memory().scratch_peak_bytes;
  }).join();
  return peak;
}

ps::CpuScratchEstimate estimated(const Run& r, const ps::ModelSpec& s) {
  ps::MemoryEstimateOptions o;
  o.method = r.method;
  o.batch_size = r.batch;
  o.seq_len = r.seq;
  o.threads = r.threads;
  o.gradient_checkpointing = r.checkpoint;
  if (r.nf4) o.quantization = nf4();
  o.lora.rank = 8;
  o.lora.targets = ps::lora_target_names();
  o.lora.dropout = 0.1f;
  o.lora.dora = r.dora;
  o.prompt.num_virtual_tokens = 20;
  o.prefix.num_virtual_tokens = 16;
  o.prefix.encoder_hidden_size = 200;
  const ps::DeviceMemoryEstimate d = ps::estimate_device_memory(s, o, "cpu", "fp32");
  // On the CPU the only part is the threads' scratch.
  CHECK(d.total() == d.cpu.total());
  CHECK(d.context_bytes == 0 && d.workspace_bytes == 0 && d.bf16_copy_bytes == 0);
  return d.cpu;
}

void test_runs() {
  const ps::ModelSpec s = mid_spec();
  const Run runs[] = {
      {"lora, 1 thread", ps::Method::Lora, false, 1},
      {"lora, 3 threads", ps::Method::Lora, false, 3},
      {"lora, 3 threads, checkpointing, longer rows", ps::Method::Lora, false, 3, 2, 400, true},
      {"qlora, 3 threads", ps::Method::Lora, true, 3},
      {"qlora, 1 thread", ps::Method::Lora, true, 1},
      {"full, 2 threads", ps::Method::Full, false, 2},
      {"prompt tuning, 2 threads", ps::Method::Prompt, false, 2},
      {"prefix tuning (projection), 2 threads", ps::Method::Prefix, false, 2},
      {"lora, 1 row of 40, 2 threads", ps::Method::Lora, false, 2, 1, 40},
      {"dora, 2 threads", ps::Method::Lora, false, 2, 3, 200, false, true},
      {"qdora, 2 threads", ps::Method::Lora, true, 2, 3, 200, false, true},
  };
  for (const Run& r : runs) {
    CHECK(ps::workspace_bytes_live() == 0);
    ps::reset_workspace_peak();
    const uint64_t held = held_by(r, s);
    const ps::CpuScratchEstimate parts = estimated(r, s);
    const uint64_t estimate = parts.total();
    std::printf("%-46s held %9llu  estimate %9llu\n", r.name, static_cast<unsigned long long>(held),
                static_cast<unsigned long long>(estimate));
    CHECK(held > 0);
    CHECK(held <= estimate);
    CHECK(held == estimate || (r.threads > 1 && estimate - held < parts.weight_gemm_bytes));
    // The engine and its thread are gone: so is their scratch.
    CHECK(ps::workspace_bytes_live() == 0);
  }
}

// The partials grow with the threads: 2 x threads x the packed keys.
void test_partials_scale_with_threads() {
  const ps::ModelSpec s = mid_spec();
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Lora;
  o.batch_size = 4;
  o.seq_len = 2048;
  o.lora.rank = 8;
  o.lora.targets = ps::lora_target_names();
  o.threads = 1;
  const ps::CpuScratchEstimate one = ps::estimate_device_memory(s, o, "cpu", "fp32").cpu;
  o.threads = 16;
  const ps::CpuScratchEstimate sixteen = ps::estimate_device_memory(s, o, "cpu", "fp32").cpu;
  // 4 rows x 2 kv heads x 2048 keys x 64 floats = 4 MiB per packed copy
  const uint64_t packed = 4ull * 2 * 2048 * 64 * 4;
  CHECK(one.attention_partials_bytes == 2 * packed);
  CHECK(sixteen.attention_partials_bytes == 32 * packed);
  // A GPU run holds none of it in host memory.
  CHECK(ps::estimate_device_memory(s, o, "cuda", "fp32").cpu.total() == 0);
}

}  // namespace

int main() {
  try {
    test_runs();
    test_partials_scale_with_threads();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_cpu_scratch");
}
