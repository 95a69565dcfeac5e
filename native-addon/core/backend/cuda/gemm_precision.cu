// The GEMM precision of the CUDA backend (EngineOptions.precision): fp32, or
// bf16 operands with fp32 accumulation on tensor cores. In bf16 every dense
// product of the backend (gemm_nt/nn/tn, and so LoRA, the NF4 and 16-bit
// weight GEMMs that call them) rounds both operands to bfloat16 (nearest
// even) and accumulates in fp32, as torch.autocast(dtype=torch.bfloat16)
// does; the other ops stay fp32.
//
// Route: cuBLASLt when it is in use (both operands rounded into bf16
// scratch copies of at most 64 MiB each first, cuBLASLt's bf16 GEMM then
// reads them), else (or when a copy would be larger, or cuBLASLt has no
// algorithm for a shape) the own tensor-core kernel of gemm_bf16.cu, which
// rounds while staging its tiles, no copy. Both give the same bf16
// operands; only the fp32 summation order differs. The stored-weight GEMMs
// (weight_gemm.cu) hand a bf16 weight to either directly: no rounded copy.
#include <string>

#include "../../quant/bf16_round.h"
#include "attention_flash.cuh"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "gemm_bf16.h"

namespace ps {

namespace {

// The largest bf16 operand copy the cuBLASLt route makes (64 MiB): every
// activation of a 2048-token step of Llama-3.1-8B (2048 x 14336) fits
// (stored 16-bit / NF4 weights need no copy: weight_gemm_bf16); an fp32 lm_head
// or an 8B-sized fp32 linear does not, and goes through the own kernel.
constexpr size_t kBf16CopyValues = size_t(32) << 20;

// dst[r * dst_ld + c] = bf16(src[r * ld + c]): a row-major [rows, cols]
// block of an fp32 matrix with row stride ld, into a bf16 copy with row
// stride dst_ld (its padding columns are left unwritten: never read).
__global__ void round_to_bf16_kernel(const float* __restrict__ src, long long ld, int rows, int cols,
                                     uint16_t* __restrict__ dst, long long dst_ld) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;  // cuda::row_col_grid
  if (c >= cols) return;
  for (int r = blockIdx.y; r < rows; r += gridDim.y)
    dst[r * dst_ld + c] = bf16_bits_from_f32_bits(__float_as_uint(src[r * ld + c]));
}

}  // namespace

namespace cuda {
void round_rows_to_bf16(const float* src, long long ld, int rows, int cols, uint16_t* dst, long long dst_ld) {
  if (rows <= 0 || cols <= 0) return;
  PS_LAUNCH(round_to_bf16_kernel, row_col_grid(rows, cols), kThreads, 0, 0)(src, ld, rows, cols, dst, dst_ld);
  check_launch("rounding a GEMM operand to bf16");
}
}  // namespace cuda

namespace cuda {
std::string bf16_unavailable_reason(const CudaDeviceInfo& info) {
  const std::string gpu = info.name + " (compute capability " + std::to_string(info.major) + "." +
                          std::to_string(info.minor) + ")";
  if (!has_bf16_tensor_cores(info))
    return gpu + " has no bf16 tensor cores (they start with compute capability 8.0, Ampere): use precision fp32";
  const int arch = flash::tensor_core_code_arch();
  if (arch < 80)
    return "this engine runs on " + gpu + " as compute_" + std::to_string(arch) +
           " code: it was built without CUDA architecture 80 or later, so its bf16 tensor-core kernels are left "
           "out; rebuild it with the default CMAKE_CUDA_ARCHITECTURES (or one that includes this GPU's), or use "
           "precision fp32";
  return "";
}
}  // namespace cuda

void CudaBackend::set_gemm_precision(GemmPrecision p) {
  if (p == GemmPrecision::Bf16) {
    cuda::check(cudaSetDevice(info_.index), "cudaSetDevice");  // the code is asked for on this device
    const std::string why = cuda::bf16_unavailable_reason(info_);
    if (!why.empty()) throw Error("precision bf16: " + why);
  }
  precision_ = p;
}

std::string CudaBackend::precision_description() const {
  if (precision_ == GemmPrecision::Fp32) return "fp32";
  return std::string("bf16 operands, fp32 accumulation (") +
         (gemm_uses_cublaslt() ? std::string("cuBLASLt")
                               : std::string("own tensor-core kernel, ") +
                                     (cuda::gemm_bf16_kernel_choice() == cuda::GemmBf16Kernel::kPrefetch ? "prefetching"
                                                                                                         : "simple")) +
         "), activations kept in bf16";
}

const uint16_t* CudaBackend::rounded_to_bf16(Scratch slot, const float* src, int ld, int rows, int cols,
                                             int dst_ld) {
  auto* dst = static_cast<uint16_t*>(scratch(slot, static_cast<size_t>(rows) * dst_ld * sizeof(uint16_t)));
  cuda::round_rows_to_bf16(src, ld, rows, cols, dst, dst_ld);
  return dst;
}

const uint16_t* CudaBackend::bf16_copy_for_cublaslt(Scratch slot, const float* src, int ld, int rows, int cols,
                                                    int& dst_ld) {
  dst_ld = (cols + 7) / 8 * 8;
  if (rows <= 0 || cols <= 0 || static_cast<size_t>(rows) * dst_ld > kBf16CopyValues || !gemm_uses_cublaslt())
    return nullptr;
  return rounded_to_bf16(slot, src, ld, rows, cols, dst_ld);
}

void CudaBackend::gemm_bf16(const char* op, bool a_trans, bool b_trans, int M, int N, int K, float alpha,
                            const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  // Stored shapes: A [K, M] when a_trans else [M, K]; B [N, K] when b_trans
  // else [K, N]. The copies' rows start on 16-byte boundaries (a multiple of
  // 8 bf16), the alignment cuBLASLt's fast bf16 kernels want, whatever the
  // rank or vocabulary size. A copy larger than kBf16CopyValues (an fp32
  // lm_head: 1 GiB of bf16 for Llama-3-8B, kept as scratch) is not made: such
  // a product takes the own kernel, which rounds on the fly.
  const int a_rows = a_trans ? K : M, a_cols = a_trans ? M : K;
  const int b_rows = b_trans ? N : K, b_cols = b_trans ? K : N;
  const int a_ld = (a_cols + 7) / 8 * 8, b_ld = (b_cols + 7) / 8 * 8;
  const bool copies_fit = static_cast<size_t>(a_rows) * a_ld <= kBf16CopyValues &&
                          static_cast<size_t>(b_rows) * b_ld <= kBf16CopyValues;
  if (M > 0 && N > 0 && K > 0 && alpha != 0.0f && copies_fit && gemm_uses_cublaslt()) {
    const uint16_t* a16 = rounded_to_bf16(Scratch::Bf16OperandA, A, lda, a_rows, a_cols, a_ld);
    const uint16_t* b16 = rounded_to_bf16(Scratch::Bf16OperandB, B, ldb, b_rows, b_cols, b_ld);
    if (try_gemm_bf16_cublaslt(op, a_trans, b_trans, M, N, K, alpha, a16, a_ld, b16, b_ld, beta, C, ldc)) return;
  }
  // The own tensor-core kernel (also when cuBLASLt has no algorithm for this shape).
  if (!a_trans && b_trans) cuda::gemm_bf16_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (!a_trans && !b_trans) cuda::gemm_bf16_nn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (a_trans && !b_trans) cuda::gemm_bf16_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else throw Error(std::string(op) + ": no bf16 GEMM for both operands transposed");
}

}  // namespace ps
