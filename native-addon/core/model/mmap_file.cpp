#include "model/mmap_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace ps {

#if defined(_WIN32)

namespace {
std::wstring widen(const std::string& utf8) {
  int n = MultiByteToWideChar(CP_UTF8, 0, utf8.c_str(), -1, nullptr, 0);
  std::wstring w(n > 0 ? n - 1 : 0, L'\0');
  if (n > 1) MultiByteToWideChar(CP_UTF8, 0, utf8.c_str(), -1, &w[0], n);
  return w;
}
std::string last_error() { return "Windows error " + std::to_string(GetLastError()); }
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  HANDLE f = CreateFileW(widen(path).c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (f == INVALID_HANDLE_VALUE) throw Error("cannot open weights file " + path + ": " + last_error());
  LARGE_INTEGER size;
  if (!GetFileSizeEx(f, &size)) {
    CloseHandle(f);
    throw Error("cannot read the size of weights file " + path + ": " + last_error());
  }
  size_ = static_cast<uint64_t>(size.QuadPart);
  file_ = f;
  if (size_ == 0) return;
  HANDLE m = CreateFileMappingW(f, nullptr, PAGE_READONLY, 0, 0, nullptr);
  if (!m) {
    CloseHandle(f);
    throw Error("cannot map weights file " + path + ": " + last_error());
  }
  void* p = MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0);
  if (!p) {
    CloseHandle(m);
    CloseHandle(f);
    throw Error("cannot map weights file " + path + ": " + last_error());
  }
  mapping_ = m;
  data_ = static_cast<const uint8_t*>(p);
}

void MappedFile::release_pages(uint64_t, uint64_t) const {}

MappedFile::~MappedFile() {
  if (data_) UnmapViewOfFile(data_);
  if (mapping_) CloseHandle(static_cast<HANDLE>(mapping_));
  if (file_) CloseHandle(static_cast<HANDLE>(file_));
}

#else

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open weights file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("cannot read the size of weights file " + path + ": " + std::strerror(e));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error("cannot map weights file " + path + ": " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release_pages(uint64_t offset, uint64_t bytes) const {
  if (!data_ || offset >= size_) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t end = std::min(size_, offset + bytes);
  const uint64_t first = (offset + page - 1) / page * page;  // whole pages only: neighbours may still be in use
  const uint64_t last = end / page * page;
  if (last > first) ::madvise(const_cast<uint8_t*>(data_) + first, last - first, MADV_DONTNEED);
}

#endif

}  // namespace ps
