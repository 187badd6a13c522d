#include "zwq/status.hpp"

namespace zwq {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kBadMessage: return "bad_message";
    case ErrorCode::kVersionMismatch: return "version_mismatch";
    case ErrorCode::kUnknownType: return "unknown_type";
    case ErrorCode::kUnknownKernel: return "unknown_kernel";
    case ErrorCode::kDatasetMissing: return "dataset_missing";
    case ErrorCode::kDatasetTooShort: return "dataset_too_short";
    case ErrorCode::kDtypeMismatch: return "dtype_mismatch";
    case ErrorCode::kOutOfRange: return "out_of_range";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kUnknownJob: return "unknown_job";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kKernelFailed: return "kernel_failed";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kUnreachable: return "unreachable";
    case ErrorCode::kBrokerRestarted: return "broker_restarted";
    case ErrorCode::kShuttingDown: return "shutting_down";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown_error";
}

std::string Error::to_string() const {
  std::string s(error_code_name(code));
  if (!message.empty()) s += ": " + message;
  return s;
}

namespace {

// The length of the well-formed UTF-8 sequence at the start of `t` (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view t) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(t[i]); };
  const auto cont = [&](std::size_t i) { return i < t.size() && (b(i) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // a surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t n = utf8_sequence(text);
    if (n > 0) {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
      continue;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    const auto c = static_cast<unsigned char>(text[0]);
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
    text.remove_prefix(1);
  }
  return out;
}

}  // namespace zwq
