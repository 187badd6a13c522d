#include "zwq/dtype.hpp"

#include <array>
#include <utility>

namespace zwq {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
    case DType::kNone: break;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kU8: return "u8";
    case DType::kNone: break;
  }
  return "none";
}

std::optional<DType> parse_dtype(std::string_view s) {
  // Our names first, then numpy's names and little-endian type strings.
  static constexpr std::array<std::pair<std::string_view, DType>, 20> kNames{{
      {"f32", DType::kF32},     {"float32", DType::kF32}, {"<f4", DType::kF32},
      {"f4", DType::kF32},      {"f64", DType::kF64},     {"float64", DType::kF64},
      {"<f8", DType::kF64},     {"f8", DType::kF64},      {"double", DType::kF64},
      {"i32", DType::kI32},     {"int32", DType::kI32},   {"<i4", DType::kI32},
      {"i4", DType::kI32},      {"i64", DType::kI64},     {"int64", DType::kI64},
      {"<i8", DType::kI64},     {"i8", DType::kI64},      {"u8", DType::kU8},
      {"uint8", DType::kU8},    {"|u1", DType::kU8},
  }};
  for (const auto& [name, t] : kNames) {
    if (name == s) return t;
  }
  if (s == "float") return DType::kF32;
  if (s == "<u1" || s == "u1") return DType::kU8;
  return std::nullopt;
}

}  // namespace zwq
