// Reads the header of a .npy file (NumPy format versions 1-3): its dtype, its shape's element
// count and its length. The data of a .npy follows the header, so zwq reads it as a raw array
// from header_bytes on (a shape of several dimensions as its elements in file order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "zwq/dtype.hpp"
#include "zwq/status.hpp"

namespace zwq {

struct NpyHeader {
  std::optional<DType> dtype;  // empty when the descr is not one of ours (e.g. big-endian)
  std::string descr;           // as written, e.g. "<f4"
  std::uint64_t count = 0;     // the product of the shape; 1 for shape ()
  std::uint64_t header_bytes = 0;
};

// From a file's first bytes (the whole header must be among them): empty when they do not start
// with the .npy magic; kInvalidArgument, with a message that names no file, when they do but the
// header is cut short or has no descr or shape zwq can read, or the array is Fortran-ordered in
// more than one dimension.
Result<std::optional<NpyHeader>> parse_npy_header(std::string_view bytes);
// The same for the file at `path`, which is read only as far as its header goes. A file that
// cannot be read counts as no .npy.
Result<std::optional<NpyHeader>> read_npy_header(const std::string& path);

}  // namespace zwq
