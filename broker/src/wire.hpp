// Broker-side frame helpers that the generic codec (zwq/codec.hpp) does not offer.
//
// Socket-free; never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "zwq/messages.hpp"

namespace zwq::broker {

// A Tasks frame (decodes as msg::Tasks) built from a job spec that was msgpack-encoded once,
// so that dispatching does not re-encode the spec for every run. It is written into `out`
// (cleared first), a buffer the caller reuses: many small Tasks messages then allocate nothing.
void encode_tasks(msgpack::sbuffer& out, std::uint64_t epoch, const std::string& spec_bytes,
                  const std::vector<SliceRun>& runs);

// The `corr` of a frame that decode_envelope() refused (wrong version, unknown type, bad body),
// so that the ErrorRep can still be matched to its request. 0 when it cannot be read.
std::uint64_t peek_corr(const void* data, std::size_t size);

}  // namespace zwq::broker
