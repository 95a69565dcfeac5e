// A read-only memory mapping of a whole file (POSIX mmap, Windows
// CreateFileMapping). Weights stored as aligned F32 are used straight from
// the mapping, so a model costs no copy and pages come in on first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ps {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws ps::Error naming the file
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Hands the whole pages inside [offset, offset + bytes) back to the OS once
  // their bytes have been converted (a 4-bit weight quantized from them), so
  // they stop counting in the process's resident memory. They read back
  // from the file if touched again. A hint: does nothing where unsupported.
  void release_pages(uint64_t offset, uint64_t bytes) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
#if defined(_WIN32)
  void* file_ = nullptr;
  void* mapping_ = nullptr;
#endif
};

}  // namespace ps
