// Encoding and decoding of every zwq message (docs/PROTOCOL.md). One encode and one decode,
// side by side, generic over the message structs in zwq/messages.hpp.
//
// Errors: decoding never throws. A frame that is not msgpack, exceeds the limits in
// protocol.hpp, has another version, an unknown type or fields of the wrong type or domain gives
// an Error (kBadMessage, kVersionMismatch, kUnknownType, kInvalidArgument) with a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "zwq/messages.hpp"
#include "zwq/msgpack_reader.hpp"
#include "zwq/protocol.hpp"
#include "zwq/status.hpp"

namespace zwq {

// The decoded outer frame: [version, type, corr, body]. Owns the unpacked body.
struct Envelope {
  std::uint32_t version = 0;
  proto::MsgType type = proto::MsgType::kErrorRep;
  std::uint64_t corr = 0;
  msgpack::object_handle handle;  // holds the whole frame; body() points into it
  msgpack::object body;
};

// The head of a frame, [version, type, corr, then the body]: packed by every encoder, the
// generic one below and the fast paths that write a body of their own.
template <typename Packer>
void pack_frame_head(Packer& pk, proto::MsgType type, std::uint64_t corr) {
  pk.pack_array(4);
  pk.pack(proto::kVersion);
  pk.pack(static_cast<std::uint8_t>(type));
  pk.pack(corr);
}
// Reads that head from `r`, of this protocol's version, and leaves `r` at the body. False for
// anything else: the fast decoders then leave the frame to decode_envelope(), which says why.
bool read_frame_head(MsgpackReader& r, std::uint64_t& type, std::uint64_t& corr);
// Reads a Partial as MSGPACK_DEFINE packs it (combiner, n, hi, lo, count, bins, bytes, terms;
// 7 elements from a peer that predates terms, which then stay empty), for the fast decoders of
// Results and of results' replies. Every array's length is checked before anything is sized by
// it: at most proto::kMaxContainer and at most the bytes left (each element takes one at least),
// so a bad length is refused without allocating for it. False for anything else.
bool read_partial(MsgpackReader& r, Partial& p);

// Encodes `m` as one frame. Never fails for a well-formed struct.
template <typename M>
std::string encode(const M& m, std::uint64_t corr = 0) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pack_frame_head(pk, M::kType, corr);
  pk.pack(m);
  return std::string(buf.data(), buf.size());
}
// A SubmitManyReq: the same bytes, its jobs packed by a SpecPacker (spec_packer.hpp), so that a
// run of jobs alike but for their ids is packed field by field once.
std::string encode(const msg::SubmitManyReq& m, std::uint64_t corr = 0);

// The msgpack object at `off` in `data`, unpacked with the codec's limits (protocol.hpp); `off`
// moves past it. For the fast decoders that read the rest of a frame themselves: `enclosing` is
// how many containers of the frame hold the object, which count towards proto::kMaxDepth as they
// do when the whole frame is unpacked. Throws what msgpack::unpack throws (a
// msgpack::unpack_error, a std::bad_alloc).
msgpack::object_handle unpack_limited(const char* data, std::size_t size, std::size_t& off,
                                      std::size_t enclosing = 0);

// Decodes the outer frame. Fails on bad msgpack, limits, a wrong version or an unknown type.
Result<Envelope> decode_envelope(const void* data, std::size_t size);

// Semantic checks of a decoded message (enum ranges, required fields, sane numbers). The default
// accepts everything; messages with rules overload it in codec.cpp.
Status check_message(const msg::SubmitReq& m);
// Batches: at most proto::kMaxBatchJobs entries (kInvalidArgument). The jobs of a SubmitManyReq
// are not checked here: each is checked on its own (check_job_spec) so that one bad job does not
// refuse the others.
Status check_message(const msg::SubmitManyReq& m);
Status check_message(const msg::WaitManyReq& m);
Status check_message(const msg::SubmitManyRep& m);
Status check_message(const msg::WaitManyRep& m);
Status check_message(const msg::Hello& m);
Status check_message(const msg::Tasks& m);
Status check_message(const msg::Results& m);
Status check_message(const msg::ErrorRep& m);
template <typename M>
Status check_message(const M&) { return Status::Ok(); }
// The checks a SubmitReq's job gets: a valid job id (kInvalidArgument), a kernel name, dtypes in
// range (kBadMessage).
Status check_job_spec(const JobSpec& job);

namespace detail {
Error convert_error(proto::MsgType expected, const std::exception& e);
Error type_error(proto::MsgType expected, proto::MsgType got);
}  // namespace detail

// Decodes the body of an envelope as message M: fails (kUnknownType) if the envelope holds
// another type, (kBadMessage) if a field has the wrong msgpack type, or with check_message's
// error.
template <typename M>
Result<M> decode_body(const Envelope& env) {
  if (env.type != M::kType) return detail::type_error(M::kType, env.type);
  M m;
  try {
    env.body.convert(m);
  } catch (const std::exception& e) {
    return detail::convert_error(M::kType, e);
  }
  if (Status s = check_message(m); !s.ok()) return s.error();
  return m;
}

// Convenience: decode_envelope + decode_body.
template <typename M>
Result<M> decode(const void* data, std::size_t size) {
  auto env = decode_envelope(data, size);
  if (!env.ok()) return env.error();
  return decode_body<M>(env.value());
}

}  // namespace zwq
