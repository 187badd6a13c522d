// Element types of zwq datasets: raw little-endian arrays as numpy.memmap writes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zwq {

// Wire-stable numbers (docs/PROTOCOL.md, "dtype").
enum class DType : std::uint8_t { kNone = 0, kF32 = 1, kF64 = 2, kI32 = 3, kI64 = 4, kU8 = 5 };

// Bytes per element; 0 for kNone.
std::size_t dtype_size(DType t);
// "f32", "f64", "i32", "i64", "u8"; "none" for kNone.
std::string_view dtype_name(DType t);
// Accepts our names and numpy's ("float32", "<f4", "int64", "uint8", ...). Empty if unknown.
std::optional<DType> parse_dtype(std::string_view s);

template <typename T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::kI32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::kI64; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::kU8; }

// Calls f(T{}) with the C++ type of `t`. `t` must not be kNone (asserted).
template <typename F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::kF32: return f(float{});
    case DType::kF64: return f(double{});
    case DType::kI32: return f(std::int32_t{});
    case DType::kI64: return f(std::int64_t{});
    case DType::kU8: return f(std::uint8_t{});
    default: break;
  }
  __builtin_unreachable();
}

}  // namespace zwq
