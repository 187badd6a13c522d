// Reads the header of a .npy file (NumPy format versions 1-3): its dtype and its length. The data
// of a one-dimensional .npy follows the header, so zwq reads it as a raw array from header_bytes
// on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "zwq/dtype.hpp"

namespace zwq {

struct NpyHeader {
  std::optional<DType> dtype;  // empty when the descr is not one of ours (e.g. big-endian)
  std::string descr;           // as written, e.g. "<f4"
  std::uint64_t header_bytes = 0;
};

// Empty if the file does not start with the .npy magic or its header is malformed.
std::optional<NpyHeader> read_npy_header(const std::string& path);

}  // namespace zwq
