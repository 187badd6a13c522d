// The replies a client takes by the thousand — SubmitManyRep and WaitManyRep, 512 jobs each
// under Client::run_many — read the way the broker writes them (every struct's fields present
// and in their declared order) straight into the message, without building msgpack-c's object
// tree first; for 10^5 small jobs that tree was the largest part of a client's cost of reading
// their answers.
//
// Error model: they never fail. Each takes only a well-formed frame [version, type, corr, body]
// of its message whose maps have exactly their struct's keys in order, within the codec's limits
// (frame size, container sizes), and nothing after it. For anything else it returns nothing, and
// the caller decodes the frame the usual way (decode_envelope, decode_body), which also gives the
// error of a bad one: both ways read the same message (tests/client/reply_reader_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "zwq/messages.hpp"

namespace zwq::detail {

template <typename Rep>
struct ReadReply {
  std::uint64_t corr = 0;
  Rep rep;
};

std::optional<ReadReply<msg::WaitManyRep>> read_wait_many_rep(const void* data, std::size_t size);
std::optional<ReadReply<msg::SubmitManyRep>> read_submit_many_rep(const void* data,
                                                                  std::size_t size);

}  // namespace zwq::detail
