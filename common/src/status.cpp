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

}  // namespace zwq
