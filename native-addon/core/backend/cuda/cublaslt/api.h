// The part of NVIDIA's cuBLASLt C API this project calls, declared by hand:
// cuBLAS is not installed where the project builds, and users have only the
// NVIDIA driver, so the library is opened at run time (loader.h) and nothing
// here needs a CUDA header. Plain C++: the loader's unit test includes it.
//
// Every number below is an ABI fact: a wrong enum value or struct size is a
// silent GPU-side bug that no test on a CPU machine can see. Each was read in
// two places (the static_asserts at the end pin the layout assumptions):
//   [H12] cublasLt.h / cublas_api.h of the CUDA 12.6 toolkit (cuBLAS 12.6.4;
//         CUBLAS_VER_MAJOR 12, MINOR 6, PATCH 4), as published in the public
//         repository zspace/system.cuda-12.6, include/.
//   [NV]  NVIDIA's nvmath-python binding docs, generated from the cuBLAS
//         headers (docs.nvidia.com/cuda/nvmath-python/{latest,0.1.0,1.0.0}/
//         bindings/generated/nvmath.bindings.cublas{,Lt}.*: Status, Operation,
//         ComputeType, MatmulDescAttribute, MatmulPreferenceAttribute,
//         MatmulHeuristicResult); "latest" covers cuBLAS 13.x, 0.1.0 covers
//         12.x, and the values agree between them.
//   [LT]  library_types.h of the CUDA 13.0 toolkit installed on the build
//         machine (/usr/local/cuda-13.0/include), for cudaDataType_t, and
//         the same enum in bindgen output of that header in public Rust
//         bindings (cudarc-style `cudaDataType_t`).
// Function signatures: [H12] cublasLt.h only (nvmath's wrappers confirm the
// argument lists and order: matmul_desc_create(compute_type, scale_type),
// matmul_algo_get_heuristic(handle, desc, a, b, c, d, pref, count, results,
// returned)).
// Beware: several hand-written "subsets" in public code get these wrong (for
// example CUBLASLT_MATMUL_DESC_TRANSA = 0); the real value is 3.
//
// Only names are re-declared, in namespace ps::cublaslt, so they can never
// clash with the real headers if a build has them.
#pragma once

#include <cstddef>
#include <cstdint>

struct CUstream_st;  // the driver's stream type; cudaStream_t is CUstream_st*

namespace ps {
namespace cublaslt {

// ---- enums (all passed as C enums: 32-bit int on every supported ABI) -----

// cublasStatus_t [H12 cublas_api.h; NV cublas.Status]
enum Status : int {
  kStatusSuccess = 0,
  kStatusNotInitialized = 1,
  kStatusAllocFailed = 3,
  kStatusInvalidValue = 7,
  kStatusArchMismatch = 8,
  kStatusMappingError = 11,
  kStatusExecutionFailed = 13,
  kStatusInternalError = 14,
  kStatusNotSupported = 15,
  kStatusLicenseError = 16,
};

// cublasOperation_t [H12 cublas_api.h; NV cublas.Operation]
enum Operation : int32_t {
  kOpN = 0,
  kOpT = 1,
};

// cublasComputeType_t [H12 cublas_api.h; NV cublas.ComputeType]:
// CUBLAS_COMPUTE_32F = 68 is plain fp32 multiply-accumulate. TF32 needs
// CUBLAS_COMPUTE_32F_FAST_TF32 = 77, which we never ask for (parity with the
// CPU backend's fp32).
enum ComputeType : int {
  kCompute32F = 68,
};

// cudaDataType_t [LT]
enum DataType : int {
  kR32F = 0,   // CUDA_R_32F
  kR16F = 2,   // CUDA_R_16F
  kR16BF = 14, // CUDA_R_16BF
};

// cublasLtMatmulDescAttributes_t [H12 cublasLt.h; NV MatmulDescAttribute].
// Both transposes are int32_t values of cublasOperation_t.
enum MatmulDescAttribute : int {
  kDescTransA = 3,  // CUBLASLT_MATMUL_DESC_TRANSA
  kDescTransB = 4,  // CUBLASLT_MATMUL_DESC_TRANSB
};

// cublasLtMatmulPreferenceAttributes_t [H12 cublasLt.h; NV
// MatmulPreferenceAttribute]. MAX_WORKSPACE_BYTES is uint64_t; the
// MIN_ALIGNMENT_* values are uint32_t (default 256: an algorithm chosen under
// the default may assume 256-byte aligned pointers, so we state ours).
enum MatmulPreferenceAttribute : int {
  kPrefMaxWorkspaceBytes = 1,  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
  kPrefMinAlignmentA = 5,      // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES
  kPrefMinAlignmentB = 6,      // ..._B_BYTES
  kPrefMinAlignmentC = 7,      // ..._C_BYTES
  kPrefMinAlignmentD = 8,      // ..._D_BYTES
};

// ---- handles and descriptors ----------------------------------------------
// All four are pointers to library-owned objects (cublasLtHandle_t is
// `struct cublasLtContext*`; the descriptors are pointers to semi-opaque
// structs that we only ever create with the *Create functions, never inline).
struct Context;
struct MatmulDescObject;
struct MatrixLayoutObject;
struct MatmulPreferenceObject;
using Handle = Context*;
using MatmulDesc = MatmulDescObject*;
using MatrixLayout = MatrixLayoutObject*;
using MatmulPreference = MatmulPreferenceObject*;
using Stream = CUstream_st*;

// cublasLtMatmulAlgo_t: `struct { uint64_t data[8]; }` [H12], 64 bytes.
struct MatmulAlgo {
  uint64_t data[8];
};

// cublasLtMatmulHeuristicResult_t [H12; NV MatmulHeuristicResult: algo,
// workspace_size uint64, state int32, waves_count float32]:
//   { cublasLtMatmulAlgo_t algo; size_t workspaceSize; cublasStatus_t state;
//     float wavesCount; int reserved[4]; }  -> 64 + 8 + 4 + 4 + 16 = 96 bytes.
// cublasLtMatmulAlgoGetHeuristic writes an array of these, so the size must
// be exact.
struct MatmulHeuristicResult {
  MatmulAlgo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

static_assert(sizeof(int) == 4, "the cuBLAS enums are 32-bit C enums");
static_assert(sizeof(Status) == 4 && sizeof(Operation) == 4 && sizeof(ComputeType) == 4 &&
                  sizeof(DataType) == 4 && sizeof(MatmulDescAttribute) == 4 &&
                  sizeof(MatmulPreferenceAttribute) == 4,
              "enums must have the size of a C enum");
static_assert(sizeof(MatmulAlgo) == 64, "cublasLtMatmulAlgo_t is 8 x uint64_t");
static_assert(sizeof(size_t) == 8, "64-bit targets only");
static_assert(offsetof(MatmulHeuristicResult, workspace_size) == 64 &&
                  offsetof(MatmulHeuristicResult, state) == 72 &&
                  offsetof(MatmulHeuristicResult, waves_count) == 76 &&
                  offsetof(MatmulHeuristicResult, reserved) == 80,
              "cublasLtMatmulHeuristicResult_t field offsets");
static_assert(sizeof(MatmulHeuristicResult) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");

// ---- functions (signatures as in [H12] cublasLt.h; C linkage, default
// calling convention on Linux; `cudaDataType` and `cublasComputeType_t`
// parameters are C enums, hence int-sized) ----------------------------------
extern "C" {
using CreateFn = Status (*)(Handle* handle);
using DestroyFn = Status (*)(Handle handle);
using GetVersionFn = size_t (*)(void);
using GetStatusStringFn = const char* (*)(Status status);
using MatmulDescCreateFn = Status (*)(MatmulDesc* desc, ComputeType compute_type, DataType scale_type);
using MatmulDescDestroyFn = Status (*)(MatmulDesc desc);
using MatmulDescSetAttributeFn = Status (*)(MatmulDesc desc, MatmulDescAttribute attr, const void* buf,
                                            size_t size_in_bytes);
using MatrixLayoutCreateFn = Status (*)(MatrixLayout* layout, DataType type, uint64_t rows, uint64_t cols,
                                        int64_t ld);
using MatrixLayoutDestroyFn = Status (*)(MatrixLayout layout);
using MatmulPreferenceCreateFn = Status (*)(MatmulPreference* pref);
using MatmulPreferenceDestroyFn = Status (*)(MatmulPreference pref);
using MatmulPreferenceSetAttributeFn = Status (*)(MatmulPreference pref, MatmulPreferenceAttribute attr,
                                                  const void* buf, size_t size_in_bytes);
using MatmulAlgoGetHeuristicFn = Status (*)(Handle handle, MatmulDesc desc, MatrixLayout a, MatrixLayout b,
                                            MatrixLayout c, MatrixLayout d, MatmulPreference pref,
                                            int requested_count, MatmulHeuristicResult results[],
                                            int* returned_count);
// D = alpha * op(A) op(B) + beta * C; alpha/beta point to host scalars of the
// scale type (the default pointer mode, CUBLASLT_POINTER_MODE_HOST).
using MatmulFn = Status (*)(Handle handle, MatmulDesc desc, const void* alpha, const void* A, MatrixLayout a_layout,
                            const void* B, MatrixLayout b_layout, const void* beta, const void* C,
                            MatrixLayout c_layout, void* D, MatrixLayout d_layout, const MatmulAlgo* algo,
                            void* workspace, size_t workspace_bytes, Stream stream);
}

// The resolved entry points of one loaded library (loader.h fills it).
struct Api {
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  GetVersionFn get_version = nullptr;
  GetStatusStringFn get_status_string = nullptr;  // optional: resolved when the library has it
  MatmulDescCreateFn matmul_desc_create = nullptr;
  MatmulDescDestroyFn matmul_desc_destroy = nullptr;
  MatmulDescSetAttributeFn matmul_desc_set_attribute = nullptr;
  MatrixLayoutCreateFn matrix_layout_create = nullptr;
  MatrixLayoutDestroyFn matrix_layout_destroy = nullptr;
  MatmulPreferenceCreateFn matmul_preference_create = nullptr;
  MatmulPreferenceDestroyFn matmul_preference_destroy = nullptr;
  MatmulPreferenceSetAttributeFn matmul_preference_set_attribute = nullptr;
  MatmulAlgoGetHeuristicFn matmul_algo_get_heuristic = nullptr;
  MatmulFn matmul = nullptr;
};

// "CUBLAS_STATUS_INVALID_VALUE (7)": our own names, so a message never
// depends on the optional cublasLtGetStatusString.
const char* status_name(Status status);

}  // namespace cublaslt
}  // namespace ps
