// Finds and opens NVIDIA's cuBLASLt at run time (dlopen), resolves the entry
// points of api.h and checks the library's version. Plain C++ with no CUDA
// header, so the CPU build tests it (tests/test_cublaslt_loader.cpp).
//
// Why at run time: users have only the NVIDIA driver; cuBLAS comes with the
// CUDA toolkit or with Python wheels (PyTorch's nvidia-cublas), if at all.
// When it is missing the CUDA backend keeps working with its own GEMM kernels
// and says why (LoadResult::message / summary).
//
// Which file: PEFT_STUDIO_CUBLASLT=/path/to/libcublasLt.so.N, when set, is the
// only candidate (an explicit choice is never silently replaced). Otherwise,
// for each major version in preference order (major_preference), the
// library is looked for
//   1. by soname through the dynamic loader (LD_LIBRARY_PATH, the ldconfig
//      cache, /lib, /usr/lib: where distribution packages put it),
//   2. next to the addon (or the executable) that contains this code,
//   3. in CUDA toolkits: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda and
//      /usr/local/cuda-*, each as lib64/ and targets/*/lib/,
//   4. in Python environments (PyTorch brings its own copy): the
//      site-packages / dist-packages of $VIRTUAL_ENV, $CONDA_PREFIX, the
//      user site, /usr/local, /usr, /opt/conda and $PYTHONPATH, in
//      nvidia/cu13/lib (CUDA 13 wheels) and nvidia/cublas/lib (CUDA 12/11
//      wheels); also $CONDA_PREFIX/lib.
// The first candidate that opens, has every required symbol and reports a
// usable version wins; the others are never opened.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api.h"

namespace ps {
namespace cublaslt {

// A loaded and checked library. Stays loaded for the life of the process
// (never dlclose'd: handles and kernels may outlive any owner).
struct Library {
  Api api;
  std::string path;     // the file that was opened (resolved from the soname when searched)
  size_t version = 0;   // cublasLtGetVersion()
  int major = 0;        // decoded from version
  std::string version_string() const;  // "12.6.4"
};

// One dlopen attempt and what happened.
struct Attempt {
  std::string candidate;  // path, or soname for a search by the dynamic loader
  std::string outcome;    // "loaded", or why it was rejected
};

struct LoadResult {
  std::shared_ptr<const Library> library;  // null when nothing usable was found
  std::vector<Attempt> attempts;           // in the order tried
  std::vector<std::string> empty_dirs;     // searched directories without a candidate file
  // Failure: several lines (every attempt, the directories searched, what to
  // do). Success: "cuBLASLt 12.6.4 (/path/libcublasLt.so.12)".
  std::string message;
  // One line for CudaBackend::describe().
  std::string summary;
  bool ok() const { return library != nullptr; }
};

// Where the environment says to look; from_process() reads the real one,
// tests build their own.
struct Environment {
  std::string explicit_path;                  // PEFT_STUDIO_CUBLASLT
  std::vector<std::string> module_dirs;       // the addon's / executable's folders
  std::vector<std::string> cuda_homes;        // $CUDA_HOME, $CUDA_PATH
  std::vector<std::string> cuda_globs;        // e.g. "/usr/local/cuda", "/usr/local/cuda-*"
  std::vector<std::string> python_prefixes;   // each P: P/lib/python3*/{site,dist}-packages
  std::vector<std::string> python_paths;      // $PYTHONPATH entries (site dirs themselves)
  std::vector<std::string> library_dirs;      // extra plain folders ($CONDA_PREFIX/lib)
  static Environment from_process();
};

struct SearchOptions {
  std::string explicit_path;             // when set: the only candidate
  std::vector<int> majors;               // preference order, e.g. {13, 12, 11}
  bool system_search = true;             // also dlopen("libcublasLt.so.N") by soname
  std::vector<std::string> directories;  // folders to look in, in order
};

// Preferred library majors for a CUDA runtime of major `runtime_major`: that
// major first (built and tested against the same driver level as the runtime
// this binary links), then older majors from newest down (a driver recent
// enough for our runtime also runs every older cuBLAS), newer majors last (a
// newer cuBLAS may need a newer driver than our runtime does, and would fail
// only at its first call). 13 -> {13, 12, 11}; 12 -> {12, 11, 13}.
std::vector<int> major_preference(int runtime_major);

// The folders of the search order above for `env`, existing ones only,
// without duplicates (by real path), in order.
std::vector<std::string> search_directories(const Environment& env);

SearchOptions default_options(const Environment& env, int runtime_major);

// Tries the candidates of `options` in order; never throws, never caches.
LoadResult load(const SearchOptions& options);

// The process-wide result: the first call searches (default_options of the
// real environment), later calls return the same result. Thread-safe.
const LoadResult& load_once(int runtime_major);

// "CUBLAS_STATUS_INVALID_VALUE (7)": for error messages.
std::string describe_status(Status status);

// Why `lib` should not run the GEMMs of a GPU with this compute capability
// major ("" when it may): cuBLAS ships machine code for Blackwell (compute
// capability 10.x and 12.x) from 12.8 on; an older library would leave such
// a GPU to PTX compiled at run time, or to no kernel at all.
std::string arch_support_problem(const Library& lib, int compute_major);

}  // namespace cublaslt
}  // namespace ps
