#include "zwq/codec.hpp"

#include <algorithm>
#include <string>
#include <string_view>

#include "zwq/spec_packer.hpp"

namespace zwq {

namespace {

Error bad(std::string what) { return make_error(ErrorCode::kBadMessage, std::move(what)); }

bool valid_dtype(DType t) { return static_cast<unsigned>(t) <= static_cast<unsigned>(DType::kU8); }
bool valid_combiner(Combiner c) {
  return c >= Combiner::kSum && c <= kLastCombiner;
}
bool valid_code(ErrorCode c) {
  return static_cast<unsigned>(c) <= static_cast<unsigned>(ErrorCode::kInternal);
}

bool valid_job_id(const std::string& id) {
  if (id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status check_dataset(const DatasetRef& d, const char* which) {
  if (!valid_dtype(d.dtype)) {
    return bad(std::string(which) + ".dtype " + std::to_string(static_cast<unsigned>(d.dtype)) +
               " is not a dtype");
  }
  return Status::Ok();
}

Status check_job(const JobSpec& j) {
  if (!valid_job_id(j.job_id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "job id '" + j.job_id + "' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  if (j.kernel.empty()) return make_error(ErrorCode::kInvalidArgument, "job names no kernel");
  for (const auto& [d, name] : {std::pair{&j.input, "input"}, {&j.input2, "input2"},
                                {&j.output, "output"}}) {
    if (Status s = check_dataset(*d, name); !s.ok()) return s;
  }
  return Status::Ok();
}

// A batch larger than the limit is refused whole, with a message naming the limit.
Status check_batch_size(std::size_t n, const char* message, const char* what) {
  if (n <= proto::kMaxBatchJobs) return Status::Ok();
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(message) + " holds " + std::to_string(n) + " " + what +
                        "; at most " + std::to_string(proto::kMaxBatchJobs) +
                        " per request (send several)");
}

bool known_type(unsigned t) {
  return !proto::msg_type_name(static_cast<proto::MsgType>(t)).empty();
}

// What msgpack-c's packer writes into: the end of a string.
struct StringSink {
  std::string& out;
  void write(const char* data, std::size_t n) { out.append(data, n); }
};

}  // namespace

bool read_frame_head(MsgpackReader& r, std::uint64_t& type, std::uint64_t& corr) {
  std::uint32_t n = 0;
  std::uint64_t version = 0;
  return r.array(n) && n == 4 && r.uint(version) && version == proto::kVersion && r.uint(type) &&
         r.uint(corr);
}

bool read_partial(MsgpackReader& r, Partial& p) {
  auto bounded = [&r](std::uint32_t& n) {
    return r.array(n) && n <= proto::kMaxContainer && n <= r.left();
  };
  std::uint32_t fields = 0, n = 0;
  std::uint64_t combiner = 0;
  std::string_view bytes;
  if (!r.array(fields) || (fields != 7 && fields != 8) || !r.uint(combiner) || combiner > 0xff ||
      !r.uint(p.n) || !r.real(p.hi) || !r.real(p.lo) || !r.uint(p.count) || !bounded(n)) {
    return false;
  }
  p.combiner = static_cast<Combiner>(combiner);
  p.bins.resize(n);
  for (std::uint64_t& b : p.bins) {
    if (!r.uint(b)) return false;
  }
  if (!r.str(bytes, true)) return false;
  p.bytes.assign(bytes);
  p.terms.clear();
  if (fields == 7) return true;
  if (!bounded(n)) return false;
  p.terms.resize(n);
  for (double& t : p.terms) {
    if (!r.real(t)) return false;
  }
  return true;
}

std::string encode(const msg::SubmitManyReq& m, std::uint64_t corr) {
  std::string out;
  StringSink sink{out};
  msgpack::packer<StringSink> pk(sink);
  pack_frame_head(pk, msg::SubmitManyReq::kType, corr);
  pk.pack_map(1);
  pk.pack(std::string_view("jobs"));
  pk.pack_array(static_cast<std::uint32_t>(m.jobs.size()));
  SpecPacker packer;
  for (const JobSpec& job : m.jobs) packer.pack(job, out);
  return out;
}

namespace detail {
Error convert_error(proto::MsgType expected, const std::exception& e) {
  const std::string type(proto::msg_type_name(expected));
  if (dynamic_cast<const FieldTypeError*>(&e) != nullptr) return bad(type + ": " + e.what());
  return bad("fields of " + type + " have the wrong type (" + e.what() + ")");
}
Error type_error(proto::MsgType expected, proto::MsgType got) {
  return make_error(ErrorCode::kUnknownType,
                    "expected " + std::string(proto::msg_type_name(expected)) + ", got " +
                        std::string(proto::msg_type_name(got)));
}
}  // namespace detail

msgpack::object_handle unpack_limited(const char* data, std::size_t size, std::size_t& off,
                                      std::size_t enclosing) {
  const std::size_t depth = enclosing < proto::kMaxDepth ? proto::kMaxDepth - enclosing : 0;
  const msgpack::unpack_limit limit(proto::kMaxContainer, proto::kMaxContainer,
                                    proto::kMaxFrameBytes, proto::kMaxFrameBytes,
                                    proto::kMaxContainer, depth);
  return msgpack::unpack(data, size, off, nullptr, nullptr, limit);
}

Result<Envelope> decode_envelope(const void* data, std::size_t size) {
  if (size > proto::kMaxFrameBytes) {
    return bad("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
               std::to_string(proto::kMaxFrameBytes));
  }
  Envelope env;
  try {
    std::size_t off = 0;
    env.handle = unpack_limited(static_cast<const char*>(data), size, off);
    if (off != size) return bad("trailing bytes after the message");
  } catch (const std::exception& e) {
    return bad(std::string("not a msgpack frame (") + e.what() + ")");
  }
  const msgpack::object& o = env.handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) {
    return bad("a frame must be the array [version, type, corr, body]");
  }
  const msgpack::object* f = o.via.array.ptr;
  if (f[0].type != msgpack::type::POSITIVE_INTEGER || f[1].type != msgpack::type::POSITIVE_INTEGER ||
      f[2].type != msgpack::type::POSITIVE_INTEGER) {
    return bad("version, type and corr must be unsigned integers");
  }
  if (f[0].via.u64 != proto::kVersion) {
    return make_error(ErrorCode::kVersionMismatch,
                      "peer speaks protocol version " + std::to_string(f[0].via.u64) +
                          ", this side speaks " + std::to_string(proto::kVersion));
  }
  if (f[1].via.u64 > 255 || !known_type(static_cast<unsigned>(f[1].via.u64))) {
    return make_error(ErrorCode::kUnknownType,
                      "unknown message type " + std::to_string(f[1].via.u64));
  }
  if (f[3].type != msgpack::type::MAP) return bad("a message body must be a map");
  env.version = static_cast<std::uint32_t>(f[0].via.u64);
  env.type = static_cast<proto::MsgType>(f[1].via.u64);
  env.corr = f[2].via.u64;
  env.body = f[3];
  return env;
}

Status check_job_spec(const JobSpec& job) { return check_job(job); }

Status check_message(const msg::SubmitReq& m) { return check_job(m.job); }

Status check_message(const msg::SubmitManyReq& m) {
  return check_batch_size(m.jobs.size(), "SubmitManyReq", "jobs");
}

Status check_message(const msg::WaitManyReq& m) {
  return check_batch_size(m.job_ids.size(), "WaitManyReq", "job ids");
}

Status check_message(const msg::SubmitManyRep& m) {
  for (const auto& item : m.items) {
    if (!valid_code(item.code)) return bad("SubmitManyRep item has an unknown error code");
  }
  return Status::Ok();
}

Status check_message(const msg::WaitManyRep& m) {
  for (const auto& item : m.items) {
    if (!valid_code(item.code)) return bad("WaitManyRep item has an unknown error code");
  }
  return Status::Ok();
}

Status check_message(const msg::Hello& m) {
  if (m.worker_id.empty() || m.worker_id.size() > 255) {
    return bad("Hello.worker_id must be 1-255 bytes");
  }
  if (m.credit == 0) return bad("Hello.credit must be at least 1");
  // What a worker says of itself is shown to clients (WorkersRep, InfoRep): it must be text.
  const auto text = [](const std::string& s) { return valid_utf8(s) == s; };
  if (!text(m.worker_id) || !text(m.host) || !text(m.memory) ||
      !std::all_of(m.kernels.begin(), m.kernels.end(), text)) {
    return bad("Hello: worker_id, host, memory and kernels must be UTF-8");
  }
  for (const KernelSpec& k : m.kernel_specs) {
    if (std::string problem = kernel_spec_problem(k); !problem.empty()) {
      return bad("Hello.kernel_specs: " + problem);
    }
    if (!text(k.name) || !text(k.help)) {
      return bad("Hello.kernel_specs: a name or help that is not UTF-8");
    }
  }
  return Status::Ok();
}

Status check_message(const msg::Tasks& m) {
  // Without a job it must name one (the receiver then checks it holds that job).
  if (m.by_ref()) {
    if (!(m.job == JobSpec{})) return bad("Tasks names its job by ref and carries part of one");
  } else if (Status s = check_job(m.job); !s.ok()) {
    return s;
  }
  for (const auto& r : m.runs) {
    if (r.count == 0) return bad("Tasks.runs holds an empty run");
  }
  return Status::Ok();
}

Status check_message(const msg::Results& m) {
  for (const auto& item : m.items) {
    if (!valid_code(item.code)) return bad("Results item has an unknown error code");
    if (!valid_combiner(item.partial.combiner)) return bad("Results item has an unknown combiner");
  }
  return Status::Ok();
}

Status check_message(const msg::ErrorRep& m) {
  if (!valid_code(m.code)) return bad("ErrorRep.code is not an error code");
  return Status::Ok();
}

}  // namespace zwq
