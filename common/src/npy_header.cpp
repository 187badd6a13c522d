#include "zwq/npy_header.hpp"

#include <cstring>
#include <fstream>
#include <limits>

namespace zwq {
namespace {

constexpr std::string_view kMagic("\x93NUMPY", 6);
constexpr std::uint64_t kMaxHeader = 1 << 20;  // far above any real header; guards a bad file

Error malformed(const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "starts with the .npy magic but its header " + why);
}

// The header's length as the fixed prefix says, and the prefix's own length; empty when the
// version is not one we know.
std::optional<std::pair<std::uint64_t, std::uint64_t>> header_length(std::string_view b) {
  const auto byte = [&](std::size_t i) {
    return static_cast<std::uint64_t>(static_cast<unsigned char>(b[i]));
  };
  const auto major = byte(6);
  if (major == 1 && b.size() >= 10) return std::pair{byte(8) | byte(9) << 8, std::uint64_t{10}};
  if ((major == 2 || major == 3) && b.size() >= 12) {
    return std::pair{byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24, std::uint64_t{12}};
  }
  return std::nullopt;
}

// The element count of a shape such as "(3, 4)", "(5,)" or "()", and its number of dimensions.
std::optional<std::uint64_t> shape_count(std::string_view dict, unsigned& dims) {
  dims = 0;
  const auto key = dict.find("'shape'");
  if (key == std::string_view::npos) return std::nullopt;
  const auto open = dict.find('(', key);
  const auto close = open == std::string_view::npos ? open : dict.find(')', open);
  if (close == std::string_view::npos) return std::nullopt;
  std::uint64_t count = 1;
  std::uint64_t dim = 0;
  bool digits = false;
  for (std::size_t i = open + 1; i <= close; ++i) {
    const char c = dict[i];
    if (c >= '0' && c <= '9') {
      if (dim > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return std::nullopt;
      dim = dim * 10 + static_cast<std::uint64_t>(c - '0');
      digits = true;
    } else if (c == ',' || c == ')') {
      if (digits) {
        if (dim != 0 && count > std::numeric_limits<std::uint64_t>::max() / dim) {
          return std::nullopt;
        }
        count *= dim;
        ++dims;
      }
      dim = 0;
      digits = false;
    } else if (c != ' ' && c != 'L') {  // (Python 2 wrote longs as 3L)
      return std::nullopt;
    }
  }
  return count;
}

}  // namespace

Result<std::optional<NpyHeader>> parse_npy_header(std::string_view bytes) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    return std::optional<NpyHeader>();
  }
  const auto length = header_length(bytes);
  if (!length) return malformed("is cut short or of an unknown version");
  const auto [len, prefix] = *length;
  if (len > kMaxHeader) return malformed("claims " + std::to_string(len) + " bytes");
  if (bytes.size() < prefix + len) {
    return malformed("is cut short: " + std::to_string(prefix + len) + " bytes, the file has " +
                     std::to_string(bytes.size()));
  }
  const std::string_view dict = bytes.substr(prefix, len);
  NpyHeader h;
  h.header_bytes = prefix + len;
  const auto key = dict.find("'descr'");
  const auto q1 = key == std::string_view::npos ? key : dict.find('\'', key + 7);
  const auto q2 = q1 == std::string_view::npos ? q1 : dict.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return malformed("names no descr");
  h.descr = std::string(dict.substr(q1 + 1, q2 - q1 - 1));
  h.dtype = parse_dtype(h.descr);
  unsigned dims = 0;
  const auto count = shape_count(dict, dims);
  if (!count) return malformed("has no shape zwq can read");
  h.count = *count;
  // zwq reads the elements in file order, which is the array's order only when C-ordered.
  const auto order = dict.find("'fortran_order'");
  if (dims > 1 && order != std::string_view::npos &&
      dict.substr(order).find("True") < dict.substr(order).find_first_of(",}")) {
    return make_error(ErrorCode::kInvalidArgument,
                      "holds a Fortran-ordered array of " + std::to_string(dims) +
                          " dimensions, whose elements zwq would read out of order: save it "
                          "C-ordered (numpy.ascontiguousarray)");
  }
  return std::optional<NpyHeader>(std::move(h));
}

Result<std::optional<NpyHeader>> read_npy_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(12, '\0');
  in.read(bytes.data(), 12);
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (const auto length = bytes.size() >= kMagic.size() && bytes.substr(0, 6) == kMagic
                              ? header_length(bytes)
                              : std::nullopt;
      length && length->first <= kMaxHeader) {
    bytes.resize(length->second + length->first);
    in.clear();
    in.seekg(0);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<std::size_t>(in.gcount()));
  }
  return parse_npy_header(bytes);
}

}  // namespace zwq
