// bf16 tensor-core GEMMs of the CUDA backend, for the bf16 compute path:
// C = alpha * op(A) op(B) + beta * C with fp32 A, B, C in memory, op(A) and
// op(B) rounded to bfloat16 (nearest even) while they are staged into shared
// memory (or B given as bf16 bits), products exact, fp32 accumulation. The layouts and the argument
// rules are the fp32 GEMMs' (backend.h): row-major; nt, nn, tn; beta 0 or 1.
// No CUDA types here: plain C++ (tests) includes it.
#pragma once

#include <string>

#include <cstdint>

namespace ps {

struct CudaDeviceInfo;

namespace cuda {

enum class MmaPath {
  kAuto,      // PTX mma.sync on sm_80 and up, the portable product below that
  kPortable,  // the warp-shuffle product everywhere (the reference for the layout check)
};

// The kernel of the own bf16 GEMM: the simple one (operands staged by the
// block between products), or the one that prefetches the next k-tile into
// registers with 16-byte loads (the same bits). Process-wide; the default
// comes from PEFT_STUDIO_GEMM_BF16 (prefetch, else simple).
enum class GemmBf16Kernel { kSimple, kPrefetch };
GemmBf16Kernel gemm_bf16_kernel_choice();
void set_gemm_bf16_kernel(GemmBf16Kernel kernel);

// Whether the device runs bf16 mma.sync in hardware (Ampere and later).
bool has_bf16_tensor_cores(const CudaDeviceInfo& info);
// Why precision bf16 cannot run on this device (the current one) with this
// build, in a sentence that says what to do; "" when it can: the GPU needs
// bf16 tensor cores, and the build code for architecture 80 or later (a
// build for 75 alone runs on a newer GPU through compute_75 code, without
// the tensor-core kernels).
std::string bf16_unavailable_reason(const CudaDeviceInfo& info);

void gemm_bf16_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                  float beta, float* C, int ldc, MmaPath path = MmaPath::kAuto);
void gemm_bf16_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                  float beta, float* C, int ldc, MmaPath path = MmaPath::kAuto);
void gemm_bf16_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                  float beta, float* C, int ldc, MmaPath path = MmaPath::kAuto);

// The same products with B given as raw bf16 bits (a BF16 weight as stored,
// or a weight dequantized / converted into bf16): bit-identical to the fp32
// overloads on a B whose values are those bf16 values widened.
void gemm_bf16_nt(int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* B, int ldb,
                  float beta, float* C, int ldc, MmaPath path = MmaPath::kAuto);
void gemm_bf16_nn(int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* B, int ldb,
                  float beta, float* C, int ldc, MmaPath path = MmaPath::kAuto);

// dst[r * dst_ld + c] = bf16(src[r * ld + c]) (nearest even) for a [rows,
// cols] block of an fp32 matrix: the operand copies cuBLASLt's bf16 GEMM
// reads (gemm_precision.cu). Columns of dst past cols are left as they are.
void round_rows_to_bf16(const float* src, long long ld, int rows, int cols, uint16_t* dst, long long dst_ld);

}  // namespace cuda
}  // namespace ps
