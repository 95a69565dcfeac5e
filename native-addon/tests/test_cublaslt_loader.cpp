// The cuBLASLt run-time loader (core/backend/cuda/cublaslt/loader.h) on a
// machine without a GPU: real dlopen calls on real files, no mocks.
//   - nothing found: the message lists every name and folder tried and says
//     what to do;
//   - a library that opens but is not cuBLASLt (libm, via
//     PEFT_STUDIO_CUBLASLT-style explicit path and as a fake wheel copy): the
//     message names the first missing symbol, cublasLtCreate;
//   - a fake directory tree (CUDA toolkits, Python wheels, a symlink) gives
//     exactly the expected search folders in the documented order;
//   - on a machine that has cuBLAS (the GPU machine) the real search loads it
//     and checks its version.
//
// The loader is plain C++ and is compiled into this test directly (it is part
// of ps_cuda, which a CPU build does not have). Linux only, like the loader's
// search (elsewhere this test has nothing to check).
#include "backend/cuda/cublaslt/loader.cpp"

#if defined(__linux__)

#include <dlfcn.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "check.h"

namespace fs = std::filesystem;
using namespace ps::cublaslt;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

#define CHECK_CONTAINS(text, part)                                                                          \
  do {                                                                                                      \
    if (!contains((text), (part)))                                                                          \
      pstest::fail(__FILE__, __LINE__, std::string("expected to find \"") + (part) + "\" in:\n" + (text)); \
  } while (0)

// The file the dynamic loader maps for libm (a real shared library that is
// certainly not cuBLASLt).
std::string libm_path() {
  void* h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
  if (!h) return "";
  void* cos_fn = dlsym(h, "cos");
  Dl_info info;
  std::string path = cos_fn && dladdr(cos_fn, &info) && info.dli_fname ? info.dli_fname : "";
  return fs::canonical(path).string();
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

void test_major_preference() {
  CHECK((major_preference(13) == std::vector<int>{13, 12, 11}));
  CHECK((major_preference(12) == std::vector<int>{12, 11, 13}));
  CHECK((major_preference(11) == std::vector<int>{11, 12, 13}));
  CHECK(describe_status(kStatusNotSupported) == "CUBLAS_STATUS_NOT_SUPPORTED (15)");
  CHECK(describe_status(kStatusInvalidValue) == "CUBLAS_STATUS_INVALID_VALUE (7)");
}

// Nothing anywhere: every soname and folder appears in the message, with the
// remedy. The system search is off so that a machine with cuBLAS installed
// gives the same answer.
void test_missing(const fs::path& tmp) {
  const fs::path empty = tmp / "empty";
  fs::create_directories(empty);
  SearchOptions o;
  o.majors = {13, 12, 11};
  o.system_search = false;
  o.directories = {empty.string()};
  LoadResult r = load(o);
  CHECK(!r.ok());
  CHECK(r.attempts.empty());
  CHECK((r.empty_dirs == std::vector<std::string>{empty.string()}));
  CHECK_CONTAINS(r.message, "could not be loaded");
  CHECK_CONTAINS(r.message, "(no candidate file found)");
  CHECK_CONTAINS(r.message, "libcublasLt.so.13/.12/.11");
  CHECK_CONTAINS(r.message, empty.string());
  CHECK_CONTAINS(r.message, "pip install nvidia-cublas-cu12");
  CHECK_CONTAINS(r.message, "PEFT_STUDIO_CUBLASLT=/path/to/libcublasLt.so.12");
  CHECK_CONTAINS(r.summary, "not found");
  CHECK(!contains(r.summary, "\n"));

  // With the dynamic loader's search: each soname is tried by name, and on a
  // machine without cuBLAS each says why (dlerror) in the message.
  o.system_search = true;
  r = load(o);
  if (r.ok()) {
    std::printf("  system search found %s\n", r.message.c_str());
  } else {
    CHECK(r.attempts.size() == 3);
    for (int major : {13, 12, 11}) {
      const std::string name = "libcublasLt.so." + std::to_string(major);
      CHECK_CONTAINS(r.message, "  " + name + " (by name: LD_LIBRARY_PATH, ldconfig cache");
      CHECK_CONTAINS(r.message, name + ": cannot open shared object file");
    }
    std::printf("  missing-library message:\n%s\n", r.message.c_str());
  }
}

void test_explicit(const fs::path& tmp, const std::string& libm) {
  SearchOptions o;
  o.majors = {13, 12, 11};
  o.explicit_path = (tmp / "nowhere" / "libcublasLt.so.12").string();
  o.directories = {(tmp / "empty").string()};  // ignored: an explicit path is the only candidate
  LoadResult r = load(o);
  CHECK(!r.ok());
  CHECK(r.attempts.size() == 1);
  CHECK_CONTAINS(r.message, "PEFT_STUDIO_CUBLASLT is set, so only that file was tried");
  CHECK_CONTAINS(r.message, o.explicit_path + ": no such file");
  CHECK(!contains(r.message, "Also searched"));
  CHECK_CONTAINS(r.summary, "PEFT_STUDIO_CUBLASLT=/path/to/libcublasLt.so.12");

  if (libm.empty()) {
    pstest::fail(__FILE__, __LINE__, "could not locate libm.so.6 for the wrong-library case");
    return;
  }
  o.explicit_path = libm;
  r = load(o);
  CHECK(!r.ok());
  CHECK(r.attempts.size() == 1);
  CHECK_CONTAINS(r.message, libm + ": opened, but it has no symbol cublasLtCreate");
  CHECK_CONTAINS(r.summary, "no symbol cublasLtCreate");
  std::printf("  wrong-library summary: %s\n", r.summary.c_str());

  // default_options: the environment's explicit path turns the search off.
  Environment env;
  env.explicit_path = libm;
  env.module_dirs = {(tmp / "empty").string()};
  const SearchOptions d = default_options(env, 13);
  CHECK(d.explicit_path == libm);
  CHECK(d.directories.empty());
  CHECK((d.majors == std::vector<int>{13, 12, 11}));
}

// A fake machine: an addon folder, two CUDA toolkits (one reached twice, via
// a "cuda" symlink), a $PYTHONPATH entry with a CUDA 13 wheel whose library
// is not an ELF file, and a virtualenv with Python 3.11 and 3.12 where 3.11
// has a CUDA 12 wheel whose libcublasLt.so.12 is really libm.
void test_tree(const fs::path& tmp, const std::string& libm) {
  const fs::path root = tmp / "tree";
  const fs::path addon = root / "addon";
  const fs::path cuda = root / "opt";
  const fs::path pp = root / "pythonpath";
  const fs::path venv = root / "venv";
  fs::create_directories(addon);
  fs::create_directories(cuda / "cuda-12.10" / "lib64");
  fs::create_directories(cuda / "cuda-12.4" / "targets" / "x86_64-linux" / "lib");
  fs::create_directory_symlink(cuda / "cuda-12.10", cuda / "cuda");
  write_text(pp / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13", "not an ELF file\n");
  const fs::path site311 = venv / "lib" / "python3.11" / "site-packages";
  const fs::path site312 = venv / "lib" / "python3.12" / "site-packages";
  fs::create_directories(site312 / "nvidia" / "cu13" / "lib");
  fs::create_directories(site311 / "nvidia" / "cublas" / "lib");
  fs::copy_file(libm, site311 / "nvidia" / "cublas" / "lib" / "libcublasLt.so.12");
  fs::create_directories(root / "conda" / "lib");

  Environment env;
  env.module_dirs = {addon.string(), (root / "missing").string()};
  env.cuda_globs = {(cuda / "cuda").string(), (cuda / "cuda-*").string()};
  env.python_paths = {pp.string()};
  env.python_prefixes = {venv.string(), (root / "no-such-prefix").string()};
  env.library_dirs = {(root / "conda" / "lib").string()};

  const std::vector<std::string> dirs = search_directories(env);
  const std::vector<std::string> want = {
      addon.string(),
      (cuda / "cuda" / "lib64").string(),  // the symlink first; cuda-12.10/lib64 is the same folder
      (cuda / "cuda-12.4" / "targets" / "x86_64-linux" / "lib").string(),
      (pp / "nvidia" / "cu13" / "lib").string(),
      (site312 / "nvidia" / "cu13" / "lib").string(),  // newest Python first
      (site311 / "nvidia" / "cublas" / "lib").string(),
      (root / "conda" / "lib").string(),
  };
  CHECK(dirs == want);
  if (dirs != want) {
    std::fprintf(stderr, "search_directories gave:\n");
    for (const std::string& d : dirs) std::fprintf(stderr, "  %s\n", d.c_str());
  }

  SearchOptions o = default_options(env, 13);
  o.system_search = false;  // this machine's own libraries must not matter here
  const LoadResult r = load(o);
  CHECK(!r.ok());
  // Major 13 first (the fake wheel, not an ELF file), then 12 (libm's copy).
  CHECK(r.attempts.size() == 2);
  if (r.attempts.size() == 2) {
    CHECK(r.attempts[0].candidate == (pp / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13").string());
    CHECK_CONTAINS(r.attempts[0].outcome, "dlopen failed");
    CHECK(r.attempts[1].candidate == (site311 / "nvidia" / "cublas" / "lib" / "libcublasLt.so.12").string());
    CHECK_CONTAINS(r.attempts[1].outcome, "opened, but it has no symbol cublasLtCreate");
  }
  CHECK(r.empty_dirs.size() == 5);
  CHECK_CONTAINS(r.message, (site311 / "nvidia" / "cublas" / "lib" / "libcublasLt.so.12").string() +
                                ": opened, but it has no symbol cublasLtCreate");
  CHECK_CONTAINS(r.message, "Also searched, no libcublasLt.so.13/.12/.11 there:\n  " + addon.string());
  CHECK_CONTAINS(r.summary, "libcublasLt.so.13: dlopen failed");  // the first unusable candidate
  std::printf("  fake-tree message:\n%s\n", r.message.c_str());
}

// The process environment feeds Environment::from_process(). The variables
// are put back afterwards: the real search below (and gpu-check.sh, which may
// set PEFT_STUDIO_CUBLASLT) must see the caller's environment.
void test_from_process(const fs::path& tmp) {
  const char* names[] = {"PEFT_STUDIO_CUBLASLT", "VIRTUAL_ENV", "PYTHONPATH", "CUDA_HOME"};
  std::vector<std::pair<bool, std::string>> saved;
  for (const char* n : names) {
    const char* v = getenv(n);
    saved.emplace_back(v != nullptr, v ? v : "");
  }
  setenv("PEFT_STUDIO_CUBLASLT", "/x/libcublasLt.so.12", 1);
  setenv("VIRTUAL_ENV", (tmp / "venv-env").c_str(), 1);
  setenv("PYTHONPATH", "/p/one:/p/two", 1);
  setenv("CUDA_HOME", "/c/home", 1);
  const Environment e = Environment::from_process();
  CHECK(e.explicit_path == "/x/libcublasLt.so.12");
  CHECK(!e.python_prefixes.empty() && e.python_prefixes.front() == (tmp / "venv-env").string());
  CHECK((e.python_paths == std::vector<std::string>{"/p/one", "/p/two"}));
  CHECK(!e.cuda_homes.empty() && e.cuda_homes.front() == "/c/home");
  CHECK(!e.module_dirs.empty());  // this executable's folder at least
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i].first) setenv(names[i], saved[i].second.c_str(), 1);
    else unsetenv(names[i]);
  }
}

// The real search of this machine, once: whatever it finds must be a usable
// cuBLASLt (the GPU machine), and the result is shared.
void test_real_search() {
  const LoadResult& a = load_once(13);
  const LoadResult& b = load_once(12);
  CHECK(&a == &b);
  if (a.ok()) {
    CHECK(a.library->major >= 11);
    CHECK(a.library->api.matmul != nullptr && a.library->api.matmul_algo_get_heuristic != nullptr);
    CHECK(!a.library->path.empty());
    std::printf("  this machine: %s\n", a.message.c_str());
  } else {
    CHECK(!a.attempts.empty() || !a.empty_dirs.empty());
    std::printf("  this machine: %s\n", a.summary.c_str());
  }
}

}  // namespace

// Blackwell needs a cuBLAS that knows it (12.8+); older GPUs take any.
void test_arch_support() {
  ps::cublaslt::Library lib;
  lib.path = "/x/libcublasLt.so.12";
  lib.version = 120604;  // 12.6.4
  lib.major = 12;
  CHECK(ps::cublaslt::arch_support_problem(lib, 9).empty());
  const std::string why = ps::cublaslt::arch_support_problem(lib, 12);
  CHECK(why == "cuBLASLt 12.6.4 (/x/libcublasLt.so.12) predates Blackwell GPUs (compute capability 12.x need cuBLAS "
               "12.8 or later)");
  CHECK(!ps::cublaslt::arch_support_problem(lib, 10).empty());
  lib.version = 120800;  // 12.8.0
  CHECK(ps::cublaslt::arch_support_problem(lib, 10).empty());
  lib.version = 130001;
  lib.major = 13;
  CHECK(ps::cublaslt::arch_support_problem(lib, 12).empty());
  lib.version = 11080;  // 11.8.0, the old encoding
  lib.major = 11;
  CHECK(!ps::cublaslt::arch_support_problem(lib, 10).empty());
  CHECK(ps::cublaslt::arch_support_problem(lib, 8).empty());
}

int main() {
  test_arch_support();
  char tmpl[] = "/tmp/ps_cublaslt_loader_XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path tmp = tmpl;
  const std::string libm = libm_path();
  std::printf("libm: %s\n", libm.c_str());
  test_major_preference();
  test_missing(tmp);
  test_explicit(tmp, libm);
  if (!libm.empty()) test_tree(tmp, libm);
  test_from_process(tmp);
  test_real_search();
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return pstest::finish("test_cublaslt_loader");
}

#else
#include <cstdio>
int main() {
  // Nothing to test here; 0 because the CPU tests have no CTest skip code.
  std::printf("test_cublaslt_loader: not applicable: the cuBLASLt run-time loader searches on Linux only\n");
  return 0;
}
#endif
