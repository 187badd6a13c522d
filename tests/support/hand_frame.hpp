// hand_frame(): a message frame [version, type, 0, {body}] written by hand, for the tests of what
// the decoders accept and refuse (shapes our own encoders never write).
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <string>

#include "zwq/messages.hpp"
#include "zwq/protocol.hpp"

namespace zwq::test {

// `body(packer)` packs the body map's `entries` key/value pairs.
template <typename Body>
std::string hand_frame(proto::MsgType type, std::uint32_t entries, Body body,
                       std::uint32_t version = proto::kVersion) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(version);
  pk.pack(static_cast<unsigned>(type));
  pk.pack(0u);
  pk.pack_map(entries);
  body(pk);
  return std::string(buf.data(), buf.size());
}

// Packs a job map {job_id, kernel, extra} whose unknown field `extra` holds arrays nested
// `nesting` deep: for the tests of the depth limit, which the fast decoders must apply as the
// usual decoding does.
template <typename Packer>
void pack_nested_job(Packer& pk, std::uint32_t nesting) {
  pk.pack_map(3);
  pk.pack(std::string("job_id"));
  pk.pack(std::string("deep"));
  pk.pack(std::string("kernel"));
  pk.pack(std::string("pi"));
  pk.pack(std::string("extra"));
  for (std::uint32_t i = 0; i < nesting; ++i) pk.pack_array(i + 1 < nesting ? 1 : 0);
}

// A Tasks frame that names its job by `ref`, as the broker writes one: {ref, runs}, nothing else.
inline std::string tasks_by_ref(std::uint64_t ref, const std::vector<SliceRun>& runs) {
  return hand_frame(proto::MsgType::kTasks, 2, [&](auto& pk) {
    pk.pack(std::string("ref"));
    pk.pack(ref);
    pk.pack(std::string("runs"));
    pk.pack(runs);
  });
}

}  // namespace zwq::test
