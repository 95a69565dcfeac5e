// Errors cross every boundary as messages, never as aborts: the core throws
// ps::Error with a sentence a user can act on, and the binding turns it into a
// JavaScript Error.
#pragma once

#include <stdexcept>
#include <string>

namespace ps {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Thrown when an allocation fails; carries how much was asked for so the
// caller can say what to change (batch, sequence length, method).
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& what, size_t bytes)
      : Error("out of memory allocating " + std::to_string(bytes) + " bytes for " + what),
        bytes(bytes) {}
  size_t bytes;
};

}  // namespace ps
