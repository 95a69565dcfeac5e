// llama-cpp-probe: runs llama.cpp itself (libllama as prebuilt in the npm
// package @node-llama-cpp/linux-x64, pinned in package.json here) on the
// GGUF files our export writes, so the tests can compare what llama.cpp
// computes with what our engine computes. It is a test instrument, not part
// of the app: electron/testing/llama-cpp.ts builds it on first use.
//
//   llama-cpp-probe logits   MODEL.gguf TOKENS.i32 OUT.f32 [LORA.gguf SCALE]
//       every position's logits, float32 [n_tokens][n_vocab]; prints n_vocab
//   llama-cpp-probe tokenize MODEL.gguf TEXT OUT.i32 add-special|no-special
//       llama.cpp's tokenization of the UTF-8 file TEXT; prints the count
//   llama-cpp-probe quantize q8_0 IN.f32 N_PER_ROW OUT.bin
//       ggml's own Q8_0 quantization of IN's rows; prints the byte count
//   llama-cpp-probe speed    MODEL.gguf PROMPT.i32 GEN.i32 THREADS
//       generation speed with llama.cpp's default context (F16 KV cache,
//       flash attention auto), as llama-cli runs: the prompt as one batch,
//       then GEN's tokens one at a time; the better of two passes, as JSON
//       {"prefill_ms", "decode_ms"}
//
// llama.cpp's warnings and errors go to stderr prefixed "llama.cpp warn:" /
// "llama.cpp error:", so a test can require that loading our file raised
// none. Exit status 1 with a one-line reason on any failure.
//
// The C API is declared here, not included: the package ships binaries
// only. The declarations follow llama.h / ggml.h of the pinned release
// (ggml-org/llama.cpp as bundled with node-llama-cpp 3.22.1). The two large
// parameter structs are handled as opaque blobs of which only the leading
// fields are touched (see ContextParams), checked against their documented
// defaults before use, so a layout change fails loudly instead of silently.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" {
struct llama_model;
struct llama_context;
struct llama_vocab;
struct llama_adapter_lora;

// llama_batch: stable since the batch API appeared.
struct llama_batch {
    int32_t n_tokens;
    int32_t *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;
};

// The probe is written for the pinned release's 56-byte batch (7 fields);
// it is passed by value, so a changed layout must stop the build, not the stack.
static_assert(sizeof(llama_batch) == 56, "llama_batch is not the pinned release's layout");

// Large enough for either parameter struct of the pinned release (llama_model_params
// is 80 bytes, llama_context_params under 256). Passed by value as the last
// argument and returned through a hidden pointer (x86-64 SysV, MEMORY class), so
// the extra tail is never read by the library.
struct ParamsBlob {
    alignas(8) unsigned char bytes[1024];
};

typedef void (*ggml_log_callback)(int level, const char *text, void *user_data);

void llama_log_set(ggml_log_callback callback, void *user_data);
void ggml_backend_load_all_from_path(const char *dir_path);
void llama_backend_init(void);
void llama_backend_free(void);
ParamsBlob llama_model_default_params(void);
ParamsBlob llama_context_default_params(void);
llama_model *llama_model_load_from_file(const char *path_model, ParamsBlob params);
void llama_model_free(llama_model *model);
llama_context *llama_init_from_model(llama_model *model, ParamsBlob params);
void llama_free(llama_context *ctx);
const llama_vocab *llama_model_get_vocab(const llama_model *model);
int32_t llama_vocab_n_tokens(const llama_vocab *vocab);
int32_t llama_tokenize(const llama_vocab *vocab, const char *text, int32_t text_len, int32_t *tokens,
                       int32_t n_tokens_max, bool add_special, bool parse_special);
llama_adapter_lora *llama_adapter_lora_init(llama_model *model, const char *path_lora);
int32_t llama_set_adapters_lora(llama_context *ctx, llama_adapter_lora **adapters, size_t n_adapters,
                                float *scales);
llama_batch llama_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
void llama_batch_free(llama_batch batch);
int32_t llama_decode(llama_context *ctx, llama_batch batch);
float *llama_get_logits_ith(llama_context *ctx, int32_t i);
size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                           int64_t n_per_row, const float *imatrix);
}

namespace {

constexpr int kLogWarn = 3, kLogError = 4, kLogCont = 5;
constexpr int kGgmlTypeQ8_0 = 8;

[[noreturn]] void fail(const std::string &why) {
    std::fprintf(stderr, "llama-cpp-probe: %s\n", why.c_str());
    std::exit(1);
}

// Keeps llama.cpp's warnings and errors (and their continuation lines), drops
// its info chatter.
void on_log(int level, const char *text, void *) {
    static int last = 0;
    if (level != kLogCont) last = level;
    if (last == kLogWarn || last == kLogError) {
        std::fprintf(stderr, "%s%s", level == kLogCont ? "" : (last == kLogWarn ? "llama.cpp warn: " : "llama.cpp error: "), text);
    }
}

std::vector<char> read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot read " + path);
    return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string &path, const void *data, size_t bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(static_cast<const char *>(data), static_cast<std::streamsize>(bytes));
    if (!out) fail("cannot write " + path);
}

std::vector<int32_t> read_tokens(const std::string &path) {
    std::vector<char> raw = read_file(path);
    if (raw.empty() || raw.size() % 4 != 0) fail(path + ": expected int32 token ids");
    std::vector<int32_t> tokens(raw.size() / 4);
    std::memcpy(tokens.data(), raw.data(), raw.size());
    return tokens;
}

// The leading fields of llama_context_params, up to the KV cache types: the
// only ones set here (the rest keep their defaults in the blob).
struct ContextParams {
    uint32_t n_ctx, n_batch, n_ubatch, n_seq_max, n_rs_seq, n_outputs_max, n_outputs_max_per_seq;
    int32_t n_threads, n_threads_batch;
    int32_t ctx_type, rope_scaling_type, pooling_type, attention_type, flash_attn_type;
    float rope_freq_base, rope_freq_scale, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float defrag_thold;
    void *cb_eval, *cb_eval_user_data;
    int32_t type_k, type_v;
};

constexpr int32_t kFlashAttnAuto = -1, kFlashAttnDisabled = 0;
constexpr int32_t kGgmlTypeF32 = 0, kGgmlTypeF16 = 1;

ParamsBlob context_params(uint32_t n_tokens, bool exact = true, int32_t threads = 2) {
    ParamsBlob blob = llama_context_default_params();
    ContextParams head;
    std::memcpy(&head, blob.bytes, sizeof head);
    // every field up to type_v at its documented default: the offsets are the ones this probe writes
    if (head.n_ctx != 512 || head.n_batch != 2048 || head.n_ubatch != 512 || head.n_seq_max != 1 || head.n_rs_seq != 0 ||
        head.n_outputs_max != 0 || head.n_outputs_max_per_seq != 1 || head.n_threads != 4 || head.n_threads_batch != 4 ||
        head.rope_scaling_type != -1 || head.pooling_type != -1 || head.attention_type != -1 ||
        head.flash_attn_type != kFlashAttnAuto || head.rope_freq_base != 0.0f || head.yarn_ext_factor != -1.0f ||
        head.type_k != kGgmlTypeF16 || head.type_v != kGgmlTypeF16 || head.cb_eval || head.cb_eval_user_data) {
        fail("llama_context_params does not hold the pinned release's defaults where this probe expects them (n_ctx 512, n_batch 2048, n_ubatch 512, 4 threads, flash attention auto, F16 KV cache, ...): the library is not the pinned one; reinstall it with npm run reference:llama-cpp");
    }
    // one context holding the whole sequence, decoded as one batch, every position an output
    head.n_ctx = (n_tokens + 255) / 256 * 256;
    head.n_batch = head.n_ubatch = n_tokens;
    head.n_outputs_max = 0;
    head.n_outputs_max_per_seq = 0;
    head.n_threads = head.n_threads_batch = threads;
    if (exact) {
        // K and V kept in fp32 and attention unfused: the comparison then measures
        // the file's weights, not llama.cpp's 16-bit cache
        head.flash_attn_type = kFlashAttnDisabled;
        head.type_k = head.type_v = kGgmlTypeF32;
    }
    std::memcpy(blob.bytes, &head, sizeof head);
    return blob;
}

llama_model *load_model(const std::string &path) {
    llama_model *model = llama_model_load_from_file(path.c_str(), llama_model_default_params());
    if (!model) fail("llama.cpp could not load the model " + path);
    return model;
}

int logits(int argc, char **argv) {
    if (argc != 5 && argc != 7) fail("usage: logits MODEL.gguf TOKENS.i32 OUT.f32 [LORA.gguf SCALE]");
    const std::vector<int32_t> tokens = read_tokens(argv[3]);
    const int32_t n = static_cast<int32_t>(tokens.size());

    llama_model *model = load_model(argv[2]);
    llama_context *ctx = llama_init_from_model(model, context_params(static_cast<uint32_t>(n)));
    if (!ctx) fail("llama.cpp could not create a context");
    llama_adapter_lora *adapter = nullptr;
    if (argc == 7) {
        adapter = llama_adapter_lora_init(model, argv[5]);
        if (!adapter) fail(std::string("llama.cpp could not load the LoRA adapter ") + argv[5]);
        float scale = std::strtof(argv[6], nullptr);
        if (llama_set_adapters_lora(ctx, &adapter, 1, &scale) != 0) fail("llama_set_adapters_lora failed");
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) fail("token id " + std::to_string(t) + " is outside the vocabulary");
    }

    llama_batch batch = llama_batch_init(n, 0, 1);
    if (!batch.token || !batch.pos || !batch.n_seq_id || !batch.seq_id || !batch.logits || batch.embd) fail("llama_batch_init did not return the batch this probe expects");
    batch.n_tokens = n;
    for (int32_t i = 0; i < n; ++i) {
        batch.token[i] = tokens[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    if (int32_t rc = llama_decode(ctx, batch); rc != 0) fail("llama_decode returned " + std::to_string(rc));

    std::vector<float> out(static_cast<size_t>(n) * n_vocab);
    for (int32_t i = 0; i < n; ++i) {
        const float *row = llama_get_logits_ith(ctx, i);
        if (!row) fail("no logits for position " + std::to_string(i));
        std::memcpy(out.data() + static_cast<size_t>(i) * n_vocab, row, sizeof(float) * n_vocab);
    }
    write_file(argv[4], out.data(), out.size() * sizeof(float));
    std::printf("%d\n", n_vocab);

    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);  // frees the adapter too
    return 0;
}

// Decodes `tokens` from position `start` as one batch, logits for the last one only.
void decode_batch(llama_context *ctx, const std::vector<int32_t> &tokens, size_t first, size_t count, int32_t start) {
    llama_batch batch = llama_batch_init(static_cast<int32_t>(count), 0, 1);
    if (!batch.token || !batch.pos || !batch.n_seq_id || !batch.seq_id || !batch.logits || batch.embd) fail("llama_batch_init did not return the batch this probe expects");
    batch.n_tokens = static_cast<int32_t>(count);
    for (size_t i = 0; i < count; ++i) {
        batch.token[i] = tokens[first + i];
        batch.pos[i] = start + static_cast<int32_t>(i);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = i + 1 == count;
    }
    if (int32_t rc = llama_decode(ctx, batch); rc != 0) fail("llama_decode returned " + std::to_string(rc));
    if (!llama_get_logits_ith(ctx, static_cast<int32_t>(count) - 1)) fail("no logits");
    llama_batch_free(batch);
}

int speed(int argc, char **argv) {
    if (argc != 6) fail("usage: speed MODEL.gguf PROMPT.i32 GEN.i32 THREADS");
    const std::vector<int32_t> prompt = read_tokens(argv[3]), gen = read_tokens(argv[4]);
    const int32_t threads = static_cast<int32_t>(std::strtol(argv[5], nullptr, 10));
    llama_model *model = load_model(argv[2]);
    using clock = std::chrono::steady_clock;
    const auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    double best_prefill = 1e300, best_decode = 1e300;
    for (int pass = 0; pass < 2; ++pass) {
        llama_context *ctx = llama_init_from_model(model, context_params(static_cast<uint32_t>(prompt.size() + gen.size()), false, threads));
        if (!ctx) fail("llama.cpp could not create a context");
        const auto t0 = clock::now();
        decode_batch(ctx, prompt, 0, prompt.size(), 0);
        const auto t1 = clock::now();
        for (size_t i = 0; i < gen.size(); ++i) decode_batch(ctx, gen, i, 1, static_cast<int32_t>(prompt.size() + i));
        const auto t2 = clock::now();
        best_prefill = std::min(best_prefill, ms(t1 - t0));
        best_decode = std::min(best_decode, ms(t2 - t1));
        llama_free(ctx);
    }
    std::printf("{\"prefill_ms\": %.3f, \"decode_ms\": %.3f}\n", best_prefill, best_decode);
    llama_model_free(model);
    return 0;
}

int tokenize(int argc, char **argv) {
    if (argc != 6) fail("usage: tokenize MODEL.gguf TEXT OUT.i32 add-special|no-special");
    std::vector<char> text = read_file(argv[3]);
    const std::string mode = argv[5];
    if (mode != "add-special" && mode != "no-special") fail("the last argument is add-special or no-special");
    llama_model *model = load_model(argv[2]);
    const llama_vocab *vocab = llama_model_get_vocab(model);
    const int32_t len = static_cast<int32_t>(text.size());
    std::vector<int32_t> ids(text.size() + 8);
    // parse_special: the text's special tokens (a chat template's <|...|>) are tokens, as in HF tokenizers
    int32_t count = llama_tokenize(vocab, text.data(), len, ids.data(), static_cast<int32_t>(ids.size()), mode == "add-special", true);
    if (count < 0) fail("llama_tokenize returned " + std::to_string(count));
    write_file(argv[4], ids.data(), static_cast<size_t>(count) * sizeof(int32_t));
    std::printf("%d\n", count);
    llama_model_free(model);
    return 0;
}

int quantize(int argc, char **argv) {
    if (argc != 6 || std::string(argv[2]) != "q8_0") fail("usage: quantize q8_0 IN.f32 N_PER_ROW OUT.bin");
    std::vector<char> raw = read_file(argv[3]);
    const int64_t per_row = std::strtoll(argv[4], nullptr, 10);
    const int64_t count = static_cast<int64_t>(raw.size() / 4);
    if (per_row <= 0 || per_row % 32 != 0 || count % per_row != 0) fail("N_PER_ROW must be a multiple of 32 dividing the input");
    std::vector<float> src(static_cast<size_t>(count));
    std::memcpy(src.data(), raw.data(), raw.size());
    // Q8_0 block: fp16 scale + 32 int8
    std::vector<unsigned char> dst(static_cast<size_t>(count / 32 * 34));
    size_t bytes = ggml_quantize_chunk(kGgmlTypeQ8_0, src.data(), dst.data(), 0, count / per_row, per_row, nullptr);
    write_file(argv[5], dst.data(), bytes);
    std::printf("%zu\n", bytes);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) fail("usage: llama-cpp-probe logits|tokenize|quantize ...");
    llama_log_set(on_log, nullptr);
    // the CPU backend is a separate library per instruction set, picked at run time
    const char *dir = std::getenv("LLAMA_CPP_PROBE_LIB_DIR");
    if (!dir) fail("LLAMA_CPP_PROBE_LIB_DIR is not set (the folder holding libllama and the ggml CPU backends)");
    ggml_backend_load_all_from_path(dir);
    llama_backend_init();
    const std::string command = argv[1];
    int rc = command == "logits" ? logits(argc, argv)
           : command == "tokenize" ? tokenize(argc, argv)
           : command == "quantize" ? quantize(argc, argv)
           : command == "speed" ? speed(argc, argv)
           : (fail("unknown command " + command), 1);
    llama_backend_free();
    return rc;
}
