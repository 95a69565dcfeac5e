// The run-time loader of cuBLASLt: candidate files in the order loader.h
// describes, dlopen, symbol resolution, version check, and the messages that
// say what was tried and what to do.
#include "loader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

#if defined(__linux__)
#include <dlfcn.h>
#include <glob.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#endif

namespace ps {
namespace cublaslt {

// ---- portable parts ------------------------------------------------------------

std::string arch_support_problem(const Library& lib, int compute_major) {
  if (compute_major < 10) return "";
  // cublasLtGetVersion(): major * 10000 + minor * 100 + patch (major * 1000 + ... before 11.x's last releases)
  const int minor = static_cast<int>(lib.version >= 100000 ? lib.version / 100 % 100 : lib.version / 100 % 10);
  if (lib.major > 12 || (lib.major == 12 && minor >= 8)) return "";
  return "cuBLASLt " + lib.version_string() + " (" + lib.path + ") predates Blackwell GPUs (compute capability " +
         std::to_string(compute_major) + ".x need cuBLAS 12.8 or later)";
}

std::string Library::version_string() const {
  if (version >= 100000)
    return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
           std::to_string(version % 100);
  return std::to_string(version / 1000) + "." + std::to_string(version / 100 % 10) + "." +
         std::to_string(version % 100);
}

const char* status_name(Status status) {
  switch (status) {
    case kStatusSuccess: return "CUBLAS_STATUS_SUCCESS";
    case kStatusNotInitialized: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case kStatusAllocFailed: return "CUBLAS_STATUS_ALLOC_FAILED";
    case kStatusInvalidValue: return "CUBLAS_STATUS_INVALID_VALUE";
    case kStatusArchMismatch: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case kStatusMappingError: return "CUBLAS_STATUS_MAPPING_ERROR";
    case kStatusExecutionFailed: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case kStatusInternalError: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case kStatusNotSupported: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case kStatusLicenseError: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

std::string describe_status(Status status) {
  return std::string(status_name(status)) + " (" + std::to_string(static_cast<int>(status)) + ")";
}

std::vector<int> major_preference(int runtime_major) {
  std::vector<int> out = {runtime_major};
  for (int m = std::min(runtime_major - 1, 13); m >= 11; --m) out.push_back(m);
  for (int m = std::max(runtime_major + 1, 11); m <= 13; ++m) out.push_back(m);
  return out;
}

SearchOptions default_options(const Environment& env, int runtime_major) {
  SearchOptions o;
  o.explicit_path = env.explicit_path;
  o.majors = major_preference(runtime_major);
  o.system_search = true;
  if (o.explicit_path.empty()) o.directories = search_directories(env);
  return o;
}

#if defined(__linux__)
// ---- Linux: dlopen -------------------------------------------------------------

namespace {

const char* kRemedy =
    "To use cuBLASLt (faster GEMMs): install the CUDA toolkit's cuBLAS (for example the libcublas-13-0 or "
    "libcublas-12-x package, or the CUDA toolkit from developer.nvidia.com), or `pip install nvidia-cublas-cu12` "
    "into a Python environment this search covers, or set PEFT_STUDIO_CUBLASLT=/path/to/libcublasLt.so.12 to "
    "the library file.";

std::string soname(int major) { return "libcublasLt.so." + std::to_string(major); }

bool is_dir(const std::string& p) {
  struct stat st;
  return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string dir_of(const std::string& file) {
  const size_t slash = file.rfind('/');
  return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : file.substr(0, slash);
}

// Sorted matches of a shell pattern; newest-looking versions first when
// `newest_first` (strverscmp: cuda-12.10 after cuda-12.9).
std::vector<std::string> glob_dirs(const std::string& pattern, bool newest_first) {
  std::vector<std::string> out;
  glob_t g;
  if (::glob(pattern.c_str(), GLOB_ONLYDIR, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    const int c = ::strverscmp(a.c_str(), b.c_str());
    return newest_first ? c > 0 : c < 0;
  });
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(sep, start);
    const std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!part.empty()) out.push_back(part);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// The major version in a file name "...libcublasLt.so.12[.x.y]", or 0.
int file_major(const std::string& path) {
  const std::string key = "libcublasLt.so.";
  const size_t at = path.rfind(key);
  if (at == std::string::npos) return 0;
  const char* p = path.c_str() + at + key.size();
  int major = 0;
  while (*p >= '0' && *p <= '9') major = major * 10 + (*p++ - '0');
  return major;
}

// cublasLtGetVersion(): major * 10000 + minor * 100 + patch (CUBLAS_VERSION in
// cublas_api.h of 11.x and 12.x); early 11.x releases used major * 1000 +
// minor * 100 + patch. Both decode right this way for majors 10..99.
int decode_major(size_t v) { return static_cast<int>(v >= 100000 ? v / 10000 : v / 1000); }

// The entry points, in the order they are resolved (the first missing one is
// the one a message names). `slot` is the Api member, written with memcpy
// (a function pointer and the void* dlsym returns have the same size on every
// POSIX system; memcpy keeps the copy free of aliasing games).
struct SymbolSlot {
  const char* name;
  void* slot;
  bool required;
};

std::vector<SymbolSlot> symbol_slots(Api& api) {
  return {
      {"cublasLtCreate", &api.create, true},
      {"cublasLtDestroy", &api.destroy, true},
      {"cublasLtGetVersion", &api.get_version, true},
      {"cublasLtMatmulDescCreate", &api.matmul_desc_create, true},
      {"cublasLtMatmulDescDestroy", &api.matmul_desc_destroy, true},
      {"cublasLtMatmulDescSetAttribute", &api.matmul_desc_set_attribute, true},
      {"cublasLtMatrixLayoutCreate", &api.matrix_layout_create, true},
      {"cublasLtMatrixLayoutDestroy", &api.matrix_layout_destroy, true},
      {"cublasLtMatmulPreferenceCreate", &api.matmul_preference_create, true},
      {"cublasLtMatmulPreferenceDestroy", &api.matmul_preference_destroy, true},
      {"cublasLtMatmulPreferenceSetAttribute", &api.matmul_preference_set_attribute, true},
      {"cublasLtMatmulAlgoGetHeuristic", &api.matmul_algo_get_heuristic, true},
      {"cublasLtMatmul", &api.matmul, true},
      {"cublasLtGetStatusString", &api.get_status_string, false},
  };
}
static_assert(sizeof(void*) == sizeof(CreateFn), "function and object pointers must have one size");

// Opens one candidate; on success fills *out and returns "", otherwise the
// reason (and the library is closed again).
std::string try_candidate(const std::string& candidate, int expected_major, Library* out) {
  ::dlerror();
  void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = ::dlerror();
    return std::string("dlopen failed: ") + (e ? e : "unknown error");
  }
  Library lib;
  for (const SymbolSlot& s : symbol_slots(lib.api)) {
    ::dlerror();
    void* sym = ::dlsym(handle, s.name);
    const char* e = ::dlerror();
    if (!sym || e) {
      if (!s.required) continue;
      const std::string why = e ? e : "null address";
      ::dlclose(handle);
      return std::string("opened, but it has no symbol ") + s.name + " (" + why +
             "): not a cuBLASLt library, or one older than 11.0";
    }
    std::memcpy(s.slot, &sym, sizeof sym);
  }
  // The file the loader actually mapped (a soname search may resolve anywhere).
  Dl_info info;
  lib.path = ::dladdr(reinterpret_cast<void*>(lib.api.create), &info) && info.dli_fname ? info.dli_fname
                                                                                        : candidate;
  lib.version = lib.api.get_version();
  lib.major = decode_major(lib.version);
  if (lib.major < 11) {
    ::dlclose(handle);
    return "opened, but cublasLtGetVersion() = " + std::to_string(lib.version) +
           " is older than cuBLAS 11.0 (whose cublasLtMatmulDescCreate takes the compute type we use)";
  }
  if (expected_major && lib.major != expected_major) {
    ::dlclose(handle);
    return "opened, but cublasLtGetVersion() = " + std::to_string(lib.version) + " (major " +
           std::to_string(lib.major) + ") does not match the file name's major " + std::to_string(expected_major);
  }
  *out = lib;
  return "";  // stays open for the life of the process
}

std::string join_majors(const std::vector<int>& majors) {
  std::string s = "libcublasLt.so.";
  for (size_t i = 0; i < majors.size(); ++i) s += (i ? "/." : "") + std::to_string(majors[i]);
  return s;
}

// Something in this library's own image, for dladdr.
void this_module_marker() {}

}  // namespace

Environment Environment::from_process() {
  Environment e;
  e.explicit_path = env("PEFT_STUDIO_CUBLASLT");
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(&this_module_marker), &info) && info.dli_fname)
    e.module_dirs.push_back(dir_of(real_path(info.dli_fname)));
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) e.module_dirs.push_back(dir_of(std::string(exe, static_cast<size_t>(n))));
  for (const char* name : {"CUDA_HOME", "CUDA_PATH"})
    if (!env(name).empty()) e.cuda_homes.push_back(env(name));
  e.cuda_globs = {"/usr/local/cuda", "/usr/local/cuda-*"};
  for (const char* name : {"VIRTUAL_ENV", "CONDA_PREFIX"})
    if (!env(name).empty()) e.python_prefixes.push_back(env(name));
  const std::string user_base = env("PYTHONUSERBASE");
  if (!user_base.empty()) e.python_prefixes.push_back(user_base);
  else if (!env("HOME").empty()) e.python_prefixes.push_back(env("HOME") + "/.local");
  for (const char* p : {"/usr/local", "/usr", "/opt/conda"}) e.python_prefixes.push_back(p);
  e.python_paths = split(env("PYTHONPATH"), ':');
  if (!env("CONDA_PREFIX").empty()) e.library_dirs.push_back(env("CONDA_PREFIX") + "/lib");
  return e;
}

std::vector<std::string> search_directories(const Environment& env) {
  std::vector<std::string> dirs;
  std::set<std::string> seen;
  auto add = [&](const std::string& d) {
    if (!is_dir(d)) return;
    if (seen.insert(real_path(d)).second) dirs.push_back(d);
  };
  for (const std::string& d : env.module_dirs) add(d);
  // CUDA toolkits: an explicit home, then /usr/local/cuda (the admin's
  // choice), then versioned installs, newest first.
  std::vector<std::string> roots = env.cuda_homes;
  for (const std::string& g : env.cuda_globs)
    for (const std::string& r : glob_dirs(g, true)) roots.push_back(r);
  for (const std::string& r : roots) {
    add(r + "/lib64");
    for (const std::string& t : glob_dirs(r + "/targets/*/lib", false)) add(t);
  }
  // Python environments: the wheel layouts of CUDA 13 (one shared nvidia/cu13)
  // and of CUDA 12/11 (one folder per library).
  std::vector<std::string> sites = env.python_paths;
  for (const std::string& p : env.python_prefixes) {
    for (const char* kind : {"site-packages", "dist-packages"})
      for (const std::string& s : glob_dirs(p + "/lib/python3*/" + kind, true)) sites.push_back(s);
    sites.push_back(p + "/lib/python3/dist-packages");
  }
  for (const std::string& s : sites) {
    add(s + "/nvidia/cu13/lib");
    add(s + "/nvidia/cublas/lib");
  }
  for (const std::string& d : env.library_dirs) add(d);
  return dirs;
}

LoadResult load(const SearchOptions& options) {
  LoadResult r;
  Library lib;
  auto attempt = [&](const std::string& candidate, int expected_major) {
    const std::string why = try_candidate(candidate, expected_major, &lib);
    r.attempts.push_back({candidate, why.empty() ? "loaded" : why});
    if (why.empty()) r.library = std::make_shared<const Library>(lib);
    return why.empty();
  };

  if (!options.explicit_path.empty()) {
    // An explicit choice: only this file. A relative name would make dlopen
    // search the system instead, so insist on a file that exists.
    const std::string& p = options.explicit_path;
    if (!is_file(p)) {
      r.attempts.push_back({p, "no such file (PEFT_STUDIO_CUBLASLT must name the library file itself)"});
    } else {
      // dlopen searches the system for a name without a slash: make it a path.
      attempt(p.find('/') == std::string::npos ? "./" + p : p, file_major(p));
    }
  } else {
    std::set<std::string> tried;  // real paths already opened
    std::vector<bool> dir_had_file(options.directories.size(), false);
    for (int major : options.majors) {
      if (options.system_search && attempt(soname(major), major)) break;
      bool found = false;
      for (size_t i = 0; i < options.directories.size() && !found; ++i) {
        const std::string path = options.directories[i] + "/" + soname(major);
        if (!is_file(path)) continue;
        dir_had_file[i] = true;
        if (!tried.insert(real_path(path)).second) continue;
        found = attempt(path, major);
      }
      if (found) break;
    }
    for (size_t i = 0; i < options.directories.size(); ++i)
      if (!dir_had_file[i]) r.empty_dirs.push_back(options.directories[i]);
  }

  if (r.ok()) {
    r.message = "cuBLASLt " + r.library->version_string() + " (" + r.library->path + ")";
    r.summary = r.message;
    return r;
  }
  std::string m = "cuBLASLt (libcublasLt) could not be loaded.\n";
  if (!options.explicit_path.empty()) m += "PEFT_STUDIO_CUBLASLT is set, so only that file was tried.\n";
  m += "Tried:\n";
  for (const Attempt& a : r.attempts) {
    const bool by_soname = a.candidate.find('/') == std::string::npos;
    m += "  " + a.candidate + (by_soname ? " (by name: LD_LIBRARY_PATH, ldconfig cache, /lib, /usr/lib)" : "") +
         ": " + a.outcome + "\n";
  }
  if (r.attempts.empty()) m += "  (no candidate file found)\n";
  if (!r.empty_dirs.empty()) {
    m += "Also searched, no " + join_majors(options.majors) + " there:\n";
    for (const std::string& d : r.empty_dirs) m += "  " + d + "\n";
  }
  m += kRemedy;
  r.message = m;
  // One line: the first candidate that was there but unusable, else "not found".
  const Attempt* rejected = nullptr;
  for (const Attempt& a : r.attempts)
    if (!rejected && a.outcome.find("cannot open shared object file: No such file") == std::string::npos)
      rejected = &a;
  r.summary = "cuBLASLt not loaded (" +
              (rejected ? rejected->candidate + ": " + rejected->outcome
                        : join_majors(options.majors) + " not found by the dynamic loader nor in " +
                              std::to_string(options.directories.size()) + " folder(s)") +
              "); install cuBLAS (e.g. pip install nvidia-cublas-cu12) or set "
              "PEFT_STUDIO_CUBLASLT=/path/to/libcublasLt.so.12";
  return r;
}

#else
// ---- elsewhere: not implemented yet (LoadLibrary and cublasLt64_N.dll on
// Windows); the backend keeps its own GEMM kernels and says why.

Environment Environment::from_process() {
  Environment e;
  const char* p = std::getenv("PEFT_STUDIO_CUBLASLT");
  if (p) e.explicit_path = p;
  return e;
}

std::vector<std::string> search_directories(const Environment&) { return {}; }

LoadResult load(const SearchOptions&) {
  LoadResult r;
  r.message = "cuBLASLt (libcublasLt) could not be loaded: loading it at run time is implemented on Linux only.";
  r.summary = "cuBLASLt not loaded (run-time loading is implemented on Linux only)";
  return r;
}
#endif

const LoadResult& load_once(int runtime_major) {
  // A function-local static: initialised exactly once, thread-safe (C++11).
  static const LoadResult result = load(default_options(Environment::from_process(), runtime_major));
  return result;
}

}  // namespace cublaslt
}  // namespace ps
