// read_wait_many: decodes a WaitManyRep the way the broker sends one — every struct's fields
// present and in their declared order — straight into the message, without building msgpack-c's
// object tree first; for 10^5 small jobs that tree was the largest part of a client's cost of
// reading their results.
//
// Error model: it never fails. It takes only a well-formed frame [version, WaitManyRep, corr,
// {items, left}] whose maps have exactly their struct's keys in order, within the codec's limits
// (frame size, container sizes), and nothing after it. For anything else it returns nothing, and
// the caller decodes the frame the usual way (decode_envelope, decode_body), which also gives
// the error of a bad one: both ways read the same message (tests/client/wait_many_reader_test.cpp).
#pragma once

#include <cstddef>
#include <optional>

#include "zwq/messages.hpp"

namespace zwq::detail {

struct ReadWaitMany {
  std::uint64_t corr = 0;
  msg::WaitManyRep rep;
};

std::optional<ReadWaitMany> read_wait_many(const void* data, std::size_t size);

}  // namespace zwq::detail
