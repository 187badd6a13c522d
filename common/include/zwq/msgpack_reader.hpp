// MsgpackReader: reads msgpack values of a few kinds in place, front to back, without building
// msgpack-c's object tree. For the hot messages' fast decoders (the worker's Tasks, the broker's
// Results), which take only the exact shape our peers write and leave anything else to the
// generic codec (zwq/codec.hpp).
//
// Error model: every read returns false when the bytes there are not of that kind or run past the
// end; the reader's position is then unspecified and the caller gives up on the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace zwq {

class MsgpackReader {
 public:
  MsgpackReader(const char* data, std::size_t size)
      : p_(reinterpret_cast<const unsigned char*>(data)), end_(p_ + size) {}

  // A non-negative integer (positive fixint, uint 8/16/32/64).
  bool uint(std::uint64_t& v) {
    if (p_ == end_) return false;
    const unsigned char b = *p_++;
    if (b <= 0x7f) {
      v = b;
      return true;
    }
    if (b < 0xcc || b > 0xcf) return false;
    return big_endian(std::size_t{1} << (b - 0xcc), v);
  }
  // A number as msgpack-c reads it into a double: a float 32 or 64, or an integer (msgpack-c
  // packs a double that holds an integer as that integer).
  bool real(double& v) {
    if (p_ == end_) return false;
    const unsigned char b = *p_;
    std::uint64_t bits = 0;
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf)) {
      if (!uint(bits)) return false;
      v = static_cast<double>(bits);
      return true;
    }
    ++p_;
    if (b >= 0xe0) {  // negative fixint
      v = static_cast<double>(static_cast<std::int8_t>(b));
      return true;
    }
    if (b >= 0xd0 && b <= 0xd3) {  // int 8/16/32/64
      const std::size_t bytes = std::size_t{1} << (b - 0xd0);
      if (!big_endian(bytes, bits)) return false;
      const unsigned shift = static_cast<unsigned>(64 - 8 * bytes);
      v = static_cast<double>(static_cast<std::int64_t>(bits << shift) >> shift);
      return true;
    }
    if (b == 0xcb) {
      if (!big_endian(8, bits)) return false;
      std::memcpy(&v, &bits, 8);
      return true;
    }
    if (b == 0xca) {
      if (!big_endian(4, bits)) return false;
      const auto b32 = static_cast<std::uint32_t>(bits);
      float f = 0;
      std::memcpy(&f, &b32, 4);
      v = f;
      return true;
    }
    return false;
  }
  bool array(std::uint32_t& n) { return header(0x90, 0xdc, n); }
  bool map(std::uint32_t& n) { return header(0x80, 0xde, n); }
  // A str (fixstr, str 8/16/32); with `or_bin`, a bin 8/16/32 too.
  bool str(std::string_view& s, bool or_bin = false) {
    if (p_ == end_) return false;
    const unsigned char b = *p_++;
    std::uint64_t n = 0;
    if ((b & 0xe0) == 0xa0) {
      n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
      if (!big_endian(std::size_t{1} << (b - 0xd9), n)) return false;
    } else if (or_bin && b >= 0xc4 && b <= 0xc6) {
      if (!big_endian(std::size_t{1} << (b - 0xc4), n)) return false;
    } else {
      return false;
    }
    if (left() < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  // The bytes left, where they start, and skipping `n` of them (n <= left()).
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  const char* here() const { return reinterpret_cast<const char*>(p_); }
  void skip(std::size_t n) { p_ += n; }

 private:
  // fix: the kind's fix-format byte (its top four bits); wide: its 16-bit format (32-bit next).
  bool header(unsigned char fix, unsigned char wide, std::uint32_t& n) {
    if (p_ == end_) return false;
    const unsigned char b = *p_++;
    std::uint64_t v = 0;
    if ((b & 0xf0) == fix) {
      v = b & 0x0f;
    } else if (b == wide || b == wide + 1) {
      if (!big_endian(b == wide ? 2 : 4, v)) return false;
    } else {
      return false;
    }
    n = static_cast<std::uint32_t>(v);
    return true;
  }
  bool big_endian(std::size_t bytes, std::uint64_t& v) {
    if (left() < bytes) return false;
    v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = v << 8 | p_[i];
    p_ += bytes;
    return true;
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

}  // namespace zwq
