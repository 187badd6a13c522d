#include "zwq/npy_header.hpp"

#include <cstring>
#include <fstream>

namespace zwq {

std::optional<NpyHeader> read_npy_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char fixed[12];
  if (!in.read(fixed, 10)) return std::nullopt;
  if (std::memcmp(fixed, "\x93NUMPY", 6) != 0) return std::nullopt;
  const auto major = static_cast<unsigned char>(fixed[6]);
  std::uint64_t len = 0;
  std::uint64_t prefix = 10;
  if (major == 1) {
    len = static_cast<unsigned char>(fixed[8]) | (static_cast<unsigned char>(fixed[9]) << 8);
  } else if (major == 2 || major == 3) {
    if (!in.read(fixed + 10, 2)) return std::nullopt;
    for (int i = 3; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(fixed[8 + i]);
    prefix = 12;
  } else {
    return std::nullopt;
  }
  constexpr std::uint64_t kMaxHeader = 1 << 20;  // far above any real header; guards a bad file
  if (len > kMaxHeader) return std::nullopt;
  std::string dict(len, '\0');
  if (!in.read(dict.data(), static_cast<std::streamsize>(len))) return std::nullopt;
  NpyHeader h;
  h.header_bytes = prefix + len;
  const auto key = dict.find("'descr'");
  if (key == std::string::npos) return std::nullopt;
  const auto q1 = dict.find('\'', key + 7);
  const auto q2 = q1 == std::string::npos ? q1 : dict.find('\'', q1 + 1);
  if (q2 == std::string::npos) return std::nullopt;
  h.descr = dict.substr(q1 + 1, q2 - q1 - 1);
  h.dtype = parse_dtype(h.descr);
  return h;
}

}  // namespace zwq
