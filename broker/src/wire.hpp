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
// `ref` 0 leaves the ref out (for a worker that does not take Tasks naming their job).
void encode_tasks(msgpack::sbuffer& out, std::uint64_t epoch, const std::string& spec_bytes,
                  std::uint64_t ref, const std::vector<SliceRun>& runs);

// A Tasks frame that names its job by `ref` alone (no epoch, no JobSpec: the worker has both
// from the Tasks before). One run of fewer than 128 slices, attempt below 128, starting below
// slice 2^32 (every Tasks of --max-batch 1) makes a frame of at most 32 bytes, which libzmq
// keeps inside the message itself, with no allocation on either side.
void encode_tasks_by_ref(msgpack::sbuffer& out, std::uint64_t ref,
                         const std::vector<SliceRun>& runs);

// The `corr` of a frame that decode_envelope() refused (wrong version, unknown type, bad body),
// so that the ErrorRep can still be matched to its request. 0 when it cannot be read.
std::uint64_t peek_corr(const void* data, std::size_t size);

}  // namespace zwq::broker
