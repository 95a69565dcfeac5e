// GPU training throughput of the whole engine (issue 7, "Benchmark"): LoRA and
// QLoRA on random models shaped like Llama-3.2-1B and Llama-3.1-8B, the
// numbers scripts/bench-gpu.sh puts beside PyTorch + transformers + peft
// (scripts/reference/bench_peft_gpu.py, same shapes, same steps).
//
//   1b   hidden 2048, 16 layers, 32 heads / 8 KV heads (head_dim 64),
//        intermediate 8192, vocab 128256, tied embeddings, llama3 RoPE x32
//   8b   hidden 4096, 32 layers, 32 / 8 heads (head_dim 128), intermediate
//        14336, vocab 128256, untied lm_head, llama3 RoPE x8
//   lora   LoRA r=16 alpha=32 on all seven linears of every block
//   qlora  the same on a 4-bit NF4 base (blocksize 64, double quantization)
//
// The random weights are written once per shape as a BF16 checkpoint (the
// dtype the real models ship in; bench_model.h) and loaded with load_weights,
// as the app loads a safetensors file. The qlora rows load a checkpoint as
// bitsandbytes saves a 4-bit model (the block linears already NF4, quantized
// here on every CPU; the rest BF16, the 16-bit embedding / lm_head kept 16-bit
// as transformers keeps them under load_in_4bit): the engine's own
// quantize-on-load goes one weight after another (~7e9 weights for 8B), which
// --quantize-on-load measures instead (the same 4-bit values either way).
// --weights=memory places fp32 values with set_weight instead (no file).
//
// One step = forward_backward + optimizer_step (AdamW, lr 1e-4, clip 1.0),
// batch x seq random tokens; both calls return host values, so the wall
// clock around them is device time. Warm-up steps first (arena, AdamW state),
// then --steps timed steps: the median gives tokens/s, the fastest "best".
//
// FLOPs per step (the definition, the same in bench_peft_gpu.py):
//   4 * N * tokens + attention, N = the matmul weights a token passes through
//   (the seven linears of every block + lm_head; not the embedding lookup):
//   2N forward + 2N input gradient (frozen base: no weight gradient). LoRA's
//   own few FLOPs (~0.5 %) are not counted. Attention, causal, per layer and
//   sequence P = T(T+1)/2 query-key pairs: QK^T and PV forward 4*hd*Hq*P,
//   backward (dV, dP, dQ, dK) 8*hd*Hq*P.
// MFU = FLOPs / step time / the card's dense bf16 peak (table below, or
// --peak-tflops=X for a card not in it).
//
// Peak device memory: a thread samples the device's free memory
// (list_devices(), cudaMemGetInfo) every 2 ms while the config runs; the
// peak is the baseline free memory (CUDA context up, before the engine
// exists) minus the lowest free memory seen. That counts everything the
// engine holds on the device, allocator rounding included, and not the CUDA
// context itself (torch.cuda.max_memory_allocated does not count it either).
// Each config runs in its own child process (its own context and peak).
//
// Output: one JSON line per config on stdout (lines starting with '{'), then
// a table. Exit status 77 (CTest's "skipped") when this build has no CUDA
// backend or no GPU is visible; 1 when a config failed.
//
// Usage: bench_gpu [--configs=1b-lora,1b-qlora,8b-lora,8b-qlora] [--steps=N]
//   [--warmup=N] [--seq=N] [--batch=N] [--quick] [--gradient-checkpointing]
//   [--peak-tflops=X] [--device=cuda|cuda:N|cpu] [--weights=file|memory]
//   [--precision=auto|bf16|fp32]  (auto, the default: bf16 GEMM operands with
//   fp32 accumulation on Ampere and later, as the PyTorch reference's bf16)
//   [--tmpdir=DIR] [--threads=N] [--quantize-on-load]
// --quick: 1b-lora,1b-qlora at seq 512, 1 warm-up + 2 steps (a smoke run).
// --device=cpu with --configs=tiny-lora,tiny-qlora runs the same code on the
// CPU backend with a tiny model (checks the benchmark itself, no GPU needed).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend_factory.h"
#include "bench_model.h"
#include "engine.h"
#include "error.h"
#include "rng.h"
#include "threadpool.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRank = 16;
constexpr float kAlpha = 32.0f;
constexpr int kSkip = 77;  // CTest's skip code: no CUDA build or no GPU

ps::ModelSpec tiny() {  // --device=cpu self-check of this program only
  ps::ModelSpec s = psbench::llama32_1b();
  s.vocab_size = 512;
  s.hidden_size = 128;
  s.intermediate_size = 256;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 32;
  s.max_position_embeddings = 4096;
  return s;
}

struct Shape {
  const char* key;    // config prefix
  const char* label;  // in the output
  ps::ModelSpec (*spec)();
};
const Shape kShapes[] = {
    {"1b", "Llama-3.2-1B shape", psbench::llama32_1b},
    {"8b", "Llama-3.1-8B shape", psbench::llama31_8b},
    {"tiny", "tiny (self-check)", tiny},
};

struct Config {
  std::string name;  // "1b-lora"
  const Shape* shape = nullptr;
  bool qlora = false;
};

// "1b-qlora" -> its shape and method; false when the name is not one.
bool parse_config(const std::string& name, Config* c) {
  const auto dash = name.find('-');
  if (dash == std::string::npos) return false;
  const std::string key = name.substr(0, dash), method = name.substr(dash + 1);
  if (method != "lora" && method != "qlora") return false;
  for (const auto& s : kShapes)
    if (key == s.key) {
      c->name = name;
      c->shape = &s;
      c->qlora = method == "qlora";
      return true;
    }
  return false;
}

struct Options {
  std::vector<std::string> configs{"1b-lora", "1b-qlora", "8b-lora", "8b-qlora"};
  int steps = 5, warmup = 2, seq = 2048, batch = 1, threads = 0;
  bool checkpointing = false, quick = false, memory_weights = false, quantize_on_load = false;
  double peak_tflops = 0;  // 0: from the table by device name
  std::string device = "cuda", precision = "auto", tmpdir, child, weights_file, out_file;
};

// Dense bf16 tensor-core peak (FP32 accumulate), TFLOPS, from NVIDIA's data
// sheets; the first entry whose text the device name contains wins.
double table_peak_tflops(const std::string& device) {
  static const std::pair<const char*, double> kPeaks[] = {
      {"H200", 989}, {"H100 PCIe", 756}, {"H100", 989}, {"A100", 312},
      {"L40S", 362}, {"RTX 4090", 165},  {"RTX 3090", 71},
  };
  for (const auto& p : kPeaks)
    if (device.find(p.first) != std::string::npos) return p.second;
  return 0;
}

// Useful FLOPs of one training step (see the header comment).
double step_flops(const ps::ModelSpec& s, int batch, int seq) {
  const double D = s.hidden_size, F = s.intermediate_size, hd = s.head_dim;
  const double Dq = s.num_heads * hd, Dkv = s.num_kv_heads * hd, L = s.num_layers, V = s.vocab_size;
  const double N = L * (D * Dq + 2 * D * Dkv + Dq * D + 3 * D * F) + V * D;
  const double tokens = static_cast<double>(batch) * seq;
  const double pairs = batch * (seq * (seq + 1.0) / 2);
  return 4 * N * tokens + 12 * hd * s.num_heads * pairs * L;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      o += buf;
    } else {
      o += ch;
    }
  }
  return o + "\"";
}

int device_index(const std::string& device) {
  return device.rfind("cuda:", 0) == 0 ? std::atoi(device.c_str() + 5) : 0;
}

// The device's free memory now (0 when unknown, e.g. on the CPU).
uint64_t free_device_bytes(int index) {
  for (const auto& d : ps::list_devices())
    if (d.index == index) return d.free_bytes;
  return 0;
}

// Samples the device's free memory on a thread until stopped; keeps the
// lowest. index < 0 (the CPU): samples nothing.
class FreeMemorySampler {
 public:
  explicit FreeMemorySampler(int index) : index_(index), lowest_(index < 0 ? 0 : free_device_bytes(index)) {
    if (index < 0) return;
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        note(free_device_bytes(index_));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  ~FreeMemorySampler() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
      note(free_device_bytes(index_));
    }
  }
  uint64_t lowest() const { return lowest_.load(); }

 private:
  void note(uint64_t f) {
    uint64_t cur = lowest_.load();
    while (f > 0 && (cur == 0 || f < cur) && !lowest_.compare_exchange_weak(cur, f)) {
    }
  }
  int index_;
  std::atomic<uint64_t> lowest_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Result {
  std::string config, model, method, device, engine, error;
  std::string load_path;  // how the weights came in (see the header comment)
  int batch = 0, seq = 0, warmup = 0, steps = 0, tokens_per_step = 0;
  bool checkpointing = false;
  double step_s = 0, best_step_s = 0, tokens_per_s = 0, flops_per_step = 0, tflops = 0, mfu = 0, peak_tflops = 0;
  double first_loss = 0, last_loss = 0, load_s = 0;
  double expected_loss = 0;  // ln(vocab): random weights this small give near-uniform predictions
  uint64_t peak_device = 0, device_after = 0, weight_bytes = 0, trainable_bytes = 0, activation_bytes = 0,
           peak_rss = 0;
  int64_t trainable_params = 0;
};

std::string to_json(const Result& r) {
  std::ostringstream o;
  o.precision(6);
  o << "{\"impl\": \"ours\", \"config\": " << json_str(r.config);
  if (!r.error.empty()) {
    o << ", \"error\": " << json_str(r.error) << "}";
    return o.str();
  }
  o << ", \"model\": " << json_str(r.model) << ", \"method\": " << json_str(r.method)
    << ", \"device\": " << json_str(r.device) << ", \"engine\": " << json_str(r.engine)
    << ", \"load_path\": " << json_str(r.load_path) << ", \"batch\": " << r.batch
    << ", \"seq\": " << r.seq << ", \"warmup\": " << r.warmup << ", \"steps\": " << r.steps
    << ", \"gradient_checkpointing\": " << (r.checkpointing ? "true" : "false")
    << ", \"tokens_per_step\": " << r.tokens_per_step << ", \"step_seconds\": " << r.step_s
    << ", \"best_step_seconds\": " << r.best_step_s << ", \"tokens_per_second\": " << r.tokens_per_s
    << ", \"flops_per_step\": " << r.flops_per_step << ", \"tflops\": " << r.tflops
    << ", \"peak_tflops\": " << r.peak_tflops << ", \"mfu\": " << r.mfu
    << ", \"peak_memory_bytes\": " << r.peak_device << ", \"device_bytes_after\": " << r.device_after
    << ", \"engine_weight_bytes\": " << r.weight_bytes << ", \"engine_trainable_bytes\": " << r.trainable_bytes
    << ", \"engine_activation_bytes\": " << r.activation_bytes << ", \"peak_rss_bytes\": " << r.peak_rss
    << ", \"trainable_params\": " << r.trainable_params << ", \"first_loss\": " << r.first_loss
    << ", \"last_loss\": " << r.last_loss << ", \"expected_first_loss\": " << r.expected_loss
    << ", \"load_seconds\": " << r.load_s << "}";
  return o.str();
}

std::string device_name(const std::string& device) {
  if (device == "cpu") return "cpu";
  const int index = device_index(device);
  for (const auto& d : ps::list_devices())
    if (d.index == index) return d.name;
  return device;
}

// One config in this process (the child).
Result run_config(const Config& c, const Options& o) {
  const ps::ModelSpec s = c.shape->spec();
  Result r;
  r.config = c.name;
  r.model = c.shape->label;
  r.method = c.qlora ? "qlora" : "lora";
  r.device = device_name(o.device);
  r.batch = o.batch;
  r.seq = o.seq;
  r.warmup = o.warmup;
  r.steps = o.steps;
  r.checkpointing = o.checkpointing;
  r.tokens_per_step = o.batch * o.seq;
  r.expected_loss = std::log(static_cast<double>(s.vocab_size));

  const int index = device_index(o.device);
  const bool on_gpu = o.device != "cpu";
  const uint64_t baseline_free = on_gpu ? free_device_bytes(index) : 0;  // context up (list_devices made it)
  FreeMemorySampler sampler(on_gpu ? index : -1);

  const auto t_load = Clock::now();
  ps::EngineOptions eo;
  eo.device = o.device;
  eo.precision = o.precision;
  eo.threads = o.threads;
  eo.gradient_checkpointing = o.checkpointing;
  eo.seed = 1;
  if (c.qlora) eo.quantization.type = ps::QuantizationOptions::Type::Nf4;  // blocksize 64, double quantization
  ps::Engine e(s, eo);
  if (o.memory_weights) {
    r.load_path = c.qlora ? "set_weight fp32, quantized by the engine" : "set_weight fp32";
    std::vector<float> v;
    uint64_t t = 0;
    for (const auto& w : ps::expected_weights(s)) {
      v.resize(psbench::numel(w.shape));
      psbench::fill_random_weights(t++, psbench::is_norm(w.name), v.data(), v.size(),
                                   o.threads > 0 ? o.threads : ps::hardware_threads());
      e.set_weight(w.name, v.data(), v.size());
    }
  } else if (std::filesystem::exists(o.weights_file + ".refs")) {  // a 4-bit checkpoint (write_nf4_checkpoint)
    r.load_path = "bitsandbytes-style NF4 checkpoint (block linears) + BF16";
    e.load_weights(psbench::read_refs(o.weights_file + ".refs", o.weights_file));
  } else {
    r.load_path = c.qlora ? "BF16 checkpoint, quantized on load" : "BF16 checkpoint";
    e.load_weights(psbench::checkpoint_refs(s, o.weights_file));
  }
  ps::LoraOptions lo;
  lo.rank = kRank;
  lo.alpha = kAlpha;
  lo.targets = ps::lora_target_names();
  lo.seed = 3;
  e.setup_lora(lo);
  e.reserve_activations(o.batch, o.seq);  // an out-of-memory shows here, before timing
  r.engine = e.describe();
  r.load_s = std::chrono::duration<double>(Clock::now() - t_load).count();

  ps::Batch b;
  b.batch_size = o.batch;
  b.seq_len = o.seq;
  ps::Rng rng(7);
  for (int i = 0; i < o.batch * o.seq; ++i) {
    const int id = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(s.vocab_size));
    b.input_ids.push_back(id);
    b.labels.push_back(id);
    b.segments.push_back(0);
    b.positions.push_back(i % o.seq);
  }
  ps::OptimizerStep opt;
  opt.lr = 1e-4f;
  opt.max_grad_norm = 1.0f;
  const float scale = 1.0f / (o.batch * (o.seq - 1));
  auto step = [&] {
    const double loss = e.forward_backward(b, scale).loss_sum * scale;
    e.optimizer_step(opt);
    return loss;
  };
  for (int i = 0; i < o.warmup; ++i) {
    const double loss = step();
    if (i == 0) r.first_loss = loss;
  }
  std::vector<double> times;
  for (int i = 0; i < o.steps; ++i) {
    const auto t0 = Clock::now();
    r.last_loss = step();
    if (o.warmup == 0 && i == 0) r.first_loss = r.last_loss;
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    std::fprintf(stderr, "%s step %d: %.3f s, loss %.4f\n", c.name.c_str(), i + 1, times.back(), r.last_loss);
  }
  sampler.stop();
  if (!std::isfinite(r.first_loss) || !std::isfinite(r.last_loss))
    throw ps::Error("the loss is not finite (first " + std::to_string(r.first_loss) + ", last " +
                    std::to_string(r.last_loss) + "): the training step is broken on " + o.device);
  std::sort(times.begin(), times.end());
  r.step_s = times[times.size() / 2];
  r.best_step_s = times.front();
  r.tokens_per_s = r.tokens_per_step / r.step_s;
  r.flops_per_step = step_flops(s, o.batch, o.seq);
  r.tflops = r.flops_per_step / r.step_s * 1e-12;
  r.peak_tflops = o.peak_tflops > 0 ? o.peak_tflops : table_peak_tflops(r.device);
  r.mfu = r.peak_tflops > 0 ? r.tflops / r.peak_tflops : 0;
  if (on_gpu && baseline_free > 0 && sampler.lowest() > 0 && sampler.lowest() <= baseline_free) {
    r.peak_device = baseline_free - sampler.lowest();
    const uint64_t now_free = free_device_bytes(index);
    r.device_after = now_free <= baseline_free ? baseline_free - now_free : 0;
  }
  const ps::MemoryUsage u = e.memory();
  r.weight_bytes = u.weight_bytes;
  r.trainable_bytes = u.trainable_bytes;
  r.activation_bytes = u.activation_bytes;
  r.peak_rss = ps::peak_rss_bytes();
  for (const auto& p : e.parameters())
    if (p.trainable) r.trainable_params += static_cast<int64_t>(psbench::numel(p.shape));
  return r;
}

double num(const std::string& line, const char* key) {
  const auto at = line.find(std::string("\"") + key + "\": ");
  return at == std::string::npos ? 0.0 : std::atof(line.c_str() + at + std::strlen(key) + 4);
}

std::string str(const std::string& line, const char* key) {
  const std::string k = std::string("\"") + key + "\": \"";
  const auto at = line.find(k);
  if (at == std::string::npos) return "";
  std::string out;
  for (size_t i = at + k.size(); i < line.size() && line[i] != '"'; ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) ++i;
    out += line[i];
  }
  return out;
}

std::string temp_path(const Options& o, const std::string& what) {
  const std::filesystem::path dir = o.tmpdir.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(o.tmpdir);
  return (dir / ("ps_bench_gpu_" + std::to_string(Clock::now().time_since_epoch().count()) + "_" + what)).string();
}

std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char ch : s) o += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return o + "'";
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--configs=1b-lora,1b-qlora,8b-lora,8b-qlora] [--steps=N] [--warmup=N] [--seq=N]\n"
               "  [--batch=N] [--quick] [--gradient-checkpointing] [--peak-tflops=X] [--device=cuda|cuda:N|cpu]\n"
               "  [--precision=auto|bf16|fp32]\n"
               "  [--weights=file|memory] [--tmpdir=DIR] [--threads=N] [--quantize-on-load]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool configs_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&](const char* key) -> const char* {
      const size_t n = std::strlen(key);
      return a.compare(0, n, key) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = val("--configs=")) {
      o.configs.clear();
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');)
        if (!x.empty()) o.configs.push_back(x);
      configs_given = true;
    } else if (const char* v = val("--steps=")) {
      o.steps = std::max(1, std::atoi(v));
    } else if (const char* v = val("--warmup=")) {
      o.warmup = std::max(0, std::atoi(v));
    } else if (const char* v = val("--seq=")) {
      o.seq = std::max(2, std::atoi(v));
    } else if (const char* v = val("--batch=")) {
      o.batch = std::max(1, std::atoi(v));
    } else if (const char* v = val("--threads=")) {
      o.threads = std::atoi(v);
    } else if (const char* v = val("--peak-tflops=")) {
      o.peak_tflops = std::atof(v);
    } else if (const char* v = val("--device=")) {
      o.device = v;
    } else if (const char* v = val("--precision=")) {
      o.precision = v;
    } else if (const char* v = val("--tmpdir=")) {
      o.tmpdir = v;
    } else if (const char* v = val("--weights=")) {
      if (std::strcmp(v, "memory") != 0 && std::strcmp(v, "file") != 0) return usage(argv[0]);
      o.memory_weights = std::strcmp(v, "memory") == 0;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--gradient-checkpointing") {
      o.checkpointing = true;
    } else if (a == "--quantize-on-load") {
      o.quantize_on_load = true;
    } else if (const char* v = val("--child=")) {  // internal: run one config, write its JSON line
      o.child = v;
    } else if (const char* v = val("--weights-file=")) {  // internal: the parent's checkpoint
      o.weights_file = v;
    } else if (const char* v = val("--out=")) {  // internal: where the child writes its line
      o.out_file = v;
    } else {
      return usage(argv[0]);
    }
  }
  if (o.quick) {
    if (!configs_given) o.configs = {"1b-lora", "1b-qlora"};
    o.seq = 512;
    o.steps = 2;
    o.warmup = 1;
  }
  std::vector<Config> configs;
  for (const auto& name : o.configs) {
    Config c;
    if (!parse_config(name, &c)) {
      std::fprintf(stderr, "unknown config \"%s\": use 1b-lora, 1b-qlora, 8b-lora, 8b-qlora (tiny-* with --device=cpu)\n",
                   name.c_str());
      return 2;
    }
    configs.push_back(c);
  }

  // Without a CUDA backend or a GPU there is nothing to measure: say why, exit 77.
  if (o.device != "cpu") {
    if (!ps::have_cuda_backend()) {
      std::printf("bench_gpu: skipped: this build has no CUDA backend (configure with -DPS_CUDA=ON or "
                  "PEFT_STUDIO_CUDA=1; needs nvcc)\n");
      return kSkip;
    }
    if (ps::list_devices().empty()) {
      std::printf("bench_gpu: skipped: no usable NVIDIA GPU is visible (driver missing or no device)\n");
      return kSkip;
    }
  }

  if (!o.child.empty()) {  // child: one config, one JSON line into --out
    Config c;
    parse_config(o.child, &c);
    Result r;
    int rc = 0;
    try {
      r = run_config(c, o);
    } catch (const std::exception& e) {
      r = Result();
      r.config = c.name;
      r.error = e.what();
      rc = 1;
    }
    std::ofstream(o.out_file.empty() ? "/dev/stdout" : o.out_file) << to_json(r) << "\n";
    return rc;
  }

  std::printf("# bench_gpu: device %s (%s), batch %d x seq %d, %d warm-up + %d timed steps, LoRA r=%d alpha=%g on all "
              "linears, gradient checkpointing %s\n",
              o.device.c_str(), device_name(o.device).c_str(), o.batch, o.seq, o.warmup, o.steps, kRank, kAlpha,
              o.checkpointing ? "on" : "off");
  std::fflush(stdout);
  std::map<std::string, std::string> weights;  // checkpoint key ("1b.bf16", "8b.nf4") -> its file
  std::vector<std::string> lines;
  int status = 0;
  // The checkpoint a config loads (8B: 16 GB BF16, 5.6 GB NF4), removed after the last config using it.
  auto checkpoint_key = [&](const Config& c) {
    return std::string(c.shape->key) + (c.qlora && !o.quantize_on_load ? ".nf4" : ".bf16");
  };
  auto remove_checkpoint = [&](const std::string& key) {
    auto it = weights.find(key);
    if (it == weights.end()) return;
    std::remove(it->second.c_str());
    std::remove((it->second + ".refs").c_str());
    weights.erase(it);
  };
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    const Config& c = configs[ci];
    std::string line;
    const std::string key = checkpoint_key(c);
    try {
      const bool nf4_file = c.qlora && !o.quantize_on_load;
      if (!o.memory_weights && !weights.count(key)) {
        const auto t0 = Clock::now();
        const std::string path = temp_path(o, key);
        const int threads = o.threads > 0 ? o.threads : ps::hardware_threads();
        if (nf4_file)
          psbench::write_nf4_checkpoint(c.shape->spec(), path, threads);
        else
          psbench::write_checkpoint_parallel(c.shape->spec(), path, threads);
        weights[key] = path;
        std::fprintf(stderr, "wrote the random %s checkpoint %s in %.1f s\n", c.shape->label, path.c_str(),
                     std::chrono::duration<double>(Clock::now() - t0).count());
      }
      const std::string out = temp_path(o, c.name + ".json");
      std::string cmd = shell_quote(argv[0]) + " --child=" + c.name + " --out=" + shell_quote(out) +
                        " --device=" + shell_quote(o.device) + " --precision=" + shell_quote(o.precision) +
                        " --steps=" + std::to_string(o.steps) +
                        " --warmup=" + std::to_string(o.warmup) + " --seq=" + std::to_string(o.seq) +
                        " --batch=" + std::to_string(o.batch) + " --threads=" + std::to_string(o.threads) +
                        " --peak-tflops=" + std::to_string(o.peak_tflops) +
                        (o.checkpointing ? " --gradient-checkpointing" : "") +
                        (o.memory_weights ? std::string(" --weights=memory")
                                          : " --weights-file=" + shell_quote(weights[key]));
      const int rc = std::system(cmd.c_str());
      std::ifstream in(out);
      std::getline(in, line);
      in.close();
      std::remove(out.c_str());
      if (line.empty()) {
        Result r;
        r.config = c.name;
        r.error = "the child process ended with status " + std::to_string(rc) + " and no result (crashed?)";
        line = to_json(r);
      }
    } catch (const std::exception& e) {
      Result r;
      r.config = c.name;
      r.error = e.what();
      line = to_json(r);
    }
    if (line.find("\"error\"") != std::string::npos) status = 1;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    lines.push_back(line);
    bool needed_later = false;
    for (size_t later = ci + 1; later < configs.size(); ++later) needed_later |= checkpoint_key(configs[later]) == key;
    if (!needed_later) remove_checkpoint(key);
  }
  while (!weights.empty()) remove_checkpoint(weights.begin()->first);

  std::printf("\n%-10s %9s %9s %8s %7s %11s %11s %9s %9s\n", "config", "tok/s", "step ms", "TFLOPS", "MFU",
              "peak mem", "engine mem", "loss0", "lossN");
  for (const auto& l : lines) {
    const std::string err = str(l, "error");
    if (!err.empty()) {
      std::printf("%-10s FAILED: %s\n", str(l, "config").c_str(), err.c_str());
      continue;
    }
    const double engine_mem = num(l, "engine_weight_bytes") + num(l, "engine_trainable_bytes") +
                              num(l, "engine_activation_bytes");
    // A first loss far from ln(vocab) means the step computes something else than the CPU would.
    const bool odd = std::fabs(num(l, "first_loss") - num(l, "expected_first_loss")) > 0.5;
    std::printf("%-10s %9.0f %9.1f %8.1f %6.1f%% %7.0f MiB %7.0f MiB %9.4f %9.4f%s\n", str(l, "config").c_str(),
                num(l, "tokens_per_second"), num(l, "step_seconds") * 1e3, num(l, "tflops"), num(l, "mfu") * 100,
                num(l, "peak_memory_bytes") / 1048576.0, engine_mem / 1048576.0, num(l, "first_loss"),
                num(l, "last_loss"), odd ? "  (loss0 far from ln(vocab): suspect)" : "");
  }
  std::printf("peak mem: device memory the config took at its peak (sampled cudaMemGetInfo, CUDA context excluded);\n"
              "engine mem: the engine's own count (weights + trainable state + activation arena).\n"
              "MFU: (4 N tokens + attention) FLOPs per step / step time / the card's dense bf16 peak%s.\n",
              o.peak_tflops > 0 ? " (--peak-tflops)" : "");
  return status;
}
