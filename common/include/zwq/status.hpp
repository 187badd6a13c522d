// zwq error model for every layer that crosses one of our APIs.
//
//  * Would block / timed out            -> std::optional that is empty.
//  * Recoverable failure across our APIs -> a [[nodiscard]] Result<T> (or Status) carrying an
//                                           ErrorCode and a message a user can act on.
//  * Set-up failure (cannot bind, bad options at start) -> exceptions (zwq::SetupError).
//  * Broken internal invariant          -> assert.
// Input from a peer is validated, counted and answered or dropped; it never throws out of a
// poll loop.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace zwq {

// Wire-stable error codes: the numbers travel in Error messages (docs/PROTOCOL.md).
enum class ErrorCode : std::uint8_t {
  kOk = 0,
  kBadMessage = 1,       // undecodable frame, wrong field type, missing field
  kVersionMismatch = 2,  // peer speaks another protocol version
  kUnknownType = 3,      // message type not known on this socket
  kUnknownKernel = 4,    // no kernel of that name
  kDatasetMissing = 5,   // the dataset file does not exist or cannot be opened
  kDatasetTooShort = 6,  // the file holds fewer bytes than the job needs
  kDtypeMismatch = 7,    // the job's dtype disagrees with the dataset's recorded dtype
  kOutOfRange = 8,       // a requested element range lies outside the dataset
  kInvalidArgument = 9,  // a field is out of its domain (slice size 0, bad param, ...)
  kUnknownJob = 10,      // no job with that id
  kCancelled = 11,       // the job was cancelled
  kKernelFailed = 12,    // a kernel reported an error on a slice
  kTimeout = 13,         // no answer within the caller's deadline
  kUnreachable = 14,     // the broker did not answer at all
  kBrokerRestarted = 15, // the broker's epoch changed: the job is gone
  kShuttingDown = 16,    // the broker no longer accepts jobs
  kInternal = 17,        // a bug on our side
};

std::string_view error_code_name(ErrorCode code);

// `text` as valid UTF-8: each byte that does not belong to a well-formed UTF-8 sequence becomes
// the four characters \xNN. Messages that quote a peer's bytes (a job id, a kernel name, a path)
// go through it before they are sent, so that a reader that decodes msgpack strings as UTF-8
// (Python's msgpack does) can read them.
std::string valid_utf8(std::string_view text);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // "unknown_kernel: no kernel named 'foo'".
  std::string to_string() const;
};

// Result<T>: either a value or an Error. Cheap to move; test with ok() before value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Status: a Result with no value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return error_.code == ErrorCode::kOk; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }

 private:
  Error error_{ErrorCode::kOk, {}};
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

// Thrown only while setting up (binding sockets, parsing options, creating directories).
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by the client library's convenience calls (wait(), sum(), ...) that turn a failed
// Result into an exception, for users who prefer try/catch like multiprocessing's get().
class JobError : public std::runtime_error {
 public:
  explicit JobError(Error e) : std::runtime_error(e.to_string()), error_(std::move(e)) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

}  // namespace zwq
